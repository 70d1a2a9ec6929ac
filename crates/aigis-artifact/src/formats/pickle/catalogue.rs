//! Which imported callables a pickle may name: the allowlist of globals that legitimate
//! PyTorch, NumPy, scikit-learn, joblib and transformers files use, and the catalogue of known
//! dangerous modules and callables. Written from the libraries' documented pickling behaviour
//! (`torch.save`, `numpy.ndarray.__reduce__`, `copyreg`, joblib's `NumpyArrayWrapper`) and from
//! published advisories; anything in neither list is "unknown" and is still reported.

use super::compat;

/// The decision for one imported global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// On the allowlist: normal in model files.
    Safe,
    /// Known to run code, touch files or the network, or load more pickles.
    Dangerous(&'static str),
    /// Neither: reported for review (high when called, medium when only referenced).
    Unknown,
}

/// `module`, `name` as the unpickler resolves them: Python 2 names rewritten as CPython does
/// ([`compat`]), then C-accelerator and platform spellings of the same modules.
fn canonical(module: &str, name: &str) -> (String, String) {
    let (module, name) = compat::python3_name(module, name);
    (canonical_module(module), name.to_owned())
}

/// Python 2 and C-accelerator spellings that the unpickler maps onto the same objects.
fn canonical_module(module: &str) -> String {
    let (head, rest) = module.split_once('.').map_or((module, ""), |(h, r)| (h, r));
    let head = match head {
        "__builtin__" | "exceptions" => "builtins",
        "copy_reg" => "copyreg",
        "cPickle" | "_pickle" => "pickle",
        "_operator" => "operator",
        "_socket" => "socket",
        "_io" => "io",
        "posix" | "nt" => "os",
        "httplib" => "http.client",
        "urllib2" => "urllib.request",
        "commands" | "popen2" | "_posixsubprocess" => "subprocess",
        "_codecs" => "_codecs",
        other => other,
    };
    let mut out = head.to_owned();
    if !rest.is_empty() {
        out.push('.');
        out.push_str(rest);
    }
    // NumPy 2 renamed numpy.core to numpy._core; both spellings load the same functions.
    if let Some(tail) = out.strip_prefix("numpy._core") {
        out = format!("numpy.core{tail}");
    }
    out
}

/// Exact `module.name` globals that are normal in model files.
const SAFE_EXACT: &[&str] = &[
    // torch.save: tensors, parameters and storages rebuilt from persistent ids.
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_sparse_csr_tensor",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_wrapper_subclass",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._tensor._rebuild_from_type_v2",
    "torch.storage.UntypedStorage",
    "torch.storage.TypedStorage",
    "torch.Size",
    "torch.device",
    "torch.dtype",
    "torch.layout",
    "torch.memory_format",
    "torch.Tensor",
    "torch.nn.parameter.Parameter",
    "torch.strided",
    "torch.sparse_coo",
    "torch.sparse_csr",
    "torch.contiguous_format",
    "torch.channels_last",
    "torch.preserve_format",
    "torch.per_tensor_affine",
    "torch.per_channel_affine",
    // Python containers and scalars (protocol 2 pickles bytes through _codecs.encode).
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.Counter",
    "collections.deque",
    "copyreg._reconstructor",
    "_codecs.encode",
    "builtins.set",
    "builtins.frozenset",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.slice",
    "builtins.range",
    "builtins.complex",
    "builtins.int",
    "builtins.float",
    "builtins.bool",
    "builtins.str",
    "builtins.bytes",
    "builtins.bytearray",
    "builtins.object",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
    "argparse.Namespace",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "pathlib.Path",
    // NumPy arrays, dtypes and scalars (numpy.ndarray.__reduce__, numpy.dtype.__reduce__).
    "numpy.core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.ma.core._mareconstruct",
    "numpy.ma.core.MaskedArray",
    "numpy.ma.MaskedArray",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random.mtrand.RandomState",
    "numpy.random._mt19937.MT19937",
    "numpy.random._pcg64.PCG64",
    "numpy.random._pcg64.PCG64DXSM",
    "numpy.random._philox.Philox",
    "numpy.random._sfc64.SFC64",
    "numpy.random.bit_generator.SeedSequence",
    // Cython's pickle of SeedSequence (`default_rng()` state): `SeedSequence.__new__(cls)` on
    // a subtype only, then its fields.
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    // joblib's in-stream array wrappers.
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "joblib.numpy_pickle_compat.NDArrayWrapper",
    "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
    // transformers' training_args.bin.
    "transformers.training_args.TrainingArguments",
    "transformers.training_args.OptimizerNames",
    "transformers.training_args_seq2seq.Seq2SeqTrainingArguments",
    "transformers.trainer_utils.IntervalStrategy",
    "transformers.trainer_utils.SchedulerType",
    "transformers.trainer_utils.HubStrategy",
    "transformers.trainer_utils.SaveStrategy",
    "transformers.debug_utils.DebugOption",
    "transformers.utils.generic.PaddingStrategy",
    "accelerate.utils.dataclasses.DistributedType",
    "accelerate.state.PartialState",
];

/// Modules whose classes (CamelCase names) are normal in pickled estimators and full models:
/// building them runs `__new__`/`__setstate__` of well-known library types.
const SAFE_CLASS_MODULES: &[&str] = &[
    "sklearn.linear_model",
    "sklearn.tree",
    "sklearn.ensemble",
    "sklearn.svm",
    "sklearn.preprocessing",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.neighbors",
    "sklearn.cluster",
    "sklearn.decomposition",
    "sklearn.naive_bayes",
    "sklearn.feature_extraction",
    "sklearn.feature_selection",
    "sklearn.impute",
    "sklearn.model_selection",
    "sklearn.neural_network",
    "sklearn.kernel_ridge",
    "sklearn.discriminant_analysis",
    "sklearn.gaussian_process",
    "sklearn.isotonic",
    "sklearn.calibration",
    "sklearn.multiclass",
    "sklearn.multioutput",
    "sklearn.mixture",
    "sklearn.manifold",
    "sklearn.covariance",
    "sklearn.cross_decomposition",
    "sklearn.dummy",
    "sklearn.semi_supervised",
    "sklearn.random_projection",
    "sklearn.kernel_approximation",
    "sklearn._loss",
    "numpy.dtypes",
    "torch.nn.modules",
];

/// Known-dangerous modules: every name in them (and in their submodules) is critical.
const DANGEROUS_MODULES: &[(&str, &str)] = &[
    (
        "os",
        "process execution and file system access (system, popen, exec*, spawn*)",
    ),
    ("subprocess", "runs commands"),
    ("pty", "spawns processes with a terminal"),
    ("socket", "opens network connections"),
    (
        "ssl",
        "network access (get_server_certificate reaches any host)",
    ),
    ("shutil", "copies, moves and deletes files"),
    ("webbrowser", "launches programs with URLs"),
    ("runpy", "runs modules and scripts"),
    ("code", "interactive interpreter: compiles and runs source"),
    ("codeop", "compiles source"),
    ("ctypes", "calls native code, loads shared libraries"),
    ("_ctypes", "calls native code"),
    ("cffi", "calls native code"),
    ("importlib", "imports arbitrary modules"),
    (
        "pkgutil",
        "resolves and imports arbitrary names (resolve_name)",
    ),
    ("zipimport", "imports code from archives"),
    ("marshal", "decodes code objects"),
    ("pickle", "loads another pickle (nested payload)"),
    ("dill", "loads pickles with code objects"),
    ("cloudpickle", "rebuilds functions from code objects"),
    ("joblib", "loads pickles from files (joblib.load)"),
    ("shelve", "loads pickles from files"),
    ("sys", "interpreter internals (sys.modules rebinding, exit)"),
    (
        "types",
        "builds code and function objects (CodeType, FunctionType)",
    ),
    (
        "operator",
        "attrgetter/methodcaller/call reach any attribute or method",
    ),
    (
        "functools",
        "partial/reduce call other callables indirectly",
    ),
    ("asyncio", "runs subprocesses and opens connections"),
    ("multiprocessing", "starts processes"),
    ("concurrent", "runs callables in workers"),
    ("threading", "runs callables in threads"),
    ("_thread", "runs callables in threads"),
    ("signal", "installs handlers, sends signals"),
    ("pdb", "debugger: runs source"),
    ("bdb", "debugger: runs source (Bdb.run)"),
    ("profile", "runs source under the profiler (run, runctx)"),
    ("cProfile", "runs source under the profiler (run, runctx)"),
    ("trace", "runs source under the tracer"),
    ("timeit", "runs source (timeit)"),
    ("doctest", "runs source (debug_script)"),
    (
        "pydoc",
        "runs pagers (pipepager) and imports names (locate)",
    ),
    ("idlelib", "IDE internals that run source and commands"),
    ("lib2to3", "loads pickled grammars"),
    ("distutils", "builds and writes files, runs compilers"),
    ("setuptools", "builds and installs packages"),
    ("pip", "installs packages (pip.main)"),
    ("ensurepip", "installs packages"),
    ("venv", "creates environments and runs commands"),
    ("_aix_support", "runs commands (_read_cmd_output)"),
    ("_osx_support", "runs commands (_read_output)"),
    ("_pyrepl", "runs pagers and source"),
    (
        "test",
        "CPython's test helpers run interpreters and commands",
    ),
    ("imaplib", "IMAP4_stream runs a command"),
    ("smtplib", "network access"),
    (
        "xmlrpc",
        "network access (ServerProxy calls remote methods)",
    ),
    ("socketserver", "listens on sockets"),
    ("ftplib", "network access"),
    ("telnetlib", "network access"),
    ("poplib", "network access"),
    ("nntplib", "network access"),
    (
        "http",
        "network access (http.client connections, http.server)",
    ),
    ("urllib", "network and file access (urlopen, urlretrieve)"),
    ("requests", "network access"),
    ("aiohttp", "network access"),
    ("httpx", "network access"),
    ("io", "opens files (FileIO, open)"),
    (
        "logging",
        "creates and writes files (FileHandler), listens on sockets (config.listen)",
    ),
    ("tempfile", "creates files"),
    ("glob", "enumerates the file system"),
    ("platform", "runs commands to identify the system"),
    ("site", "runs site customisation code"),
    ("sysconfig", "interpreter configuration"),
    ("inspect", "reaches frames and globals"),
    ("gc", "reaches every live object"),
    ("builtins.__import__", "imports arbitrary modules"),
    ("yaml", "unsafe YAML loaders construct arbitrary objects"),
    ("mailcap", "runs commands from mailcap entries"),
    ("tarfile", "extracts files"),
    ("zipfile", "extracts and writes files"),
    ("torch.serialization", "loads other pickles (torch.load)"),
    ("torch.hub", "downloads and runs repository code"),
    ("torch.package", "imports code from packages"),
    (
        "torch.jit",
        "loads TorchScript and runs source (execWrapper)",
    ),
    (
        "torch._inductor",
        "compiles and runs generated code (codecache)",
    ),
    ("torch._dynamo", "evaluates guard source"),
    (
        "torch.fx",
        "evaluates generated source (symbolic_shapes guards)",
    ),
    ("torch.utils.bottleneck", "runs scripts under profilers"),
    ("torch.utils.collect_env", "runs commands"),
    (
        "torch.utils.cpp_extension",
        "compiles and loads native code",
    ),
    (
        "torch.utils.data.datapipes",
        "decoders load pickles and files",
    ),
    ("torch.utils._config_module", "loads pickled configs"),
    ("torch.testing", "test helpers that run code"),
    ("torch.distributed", "RPC runs remote callables"),
    ("numpy.testing", "runs source (runstring)"),
    ("numpy.f2py", "evaluates Fortran expressions with eval"),
    ("numpy.distutils", "runs compilers"),
    ("numpy.ctypeslib", "loads shared libraries"),
    ("numpy.lib.npyio", "loads pickles from files"),
    ("keras.src.saving", "loads models with code"),
    (
        "aigis",
        "the scanner's own modules: tampering with the scanner",
    ),
    (
        "picklescan",
        "a scanner's own modules: tampering with the scanner",
    ),
    (
        "modelscan",
        "a scanner's own modules: tampering with the scanner",
    ),
    (
        "fickling",
        "a scanner's own modules: tampering with the scanner",
    ),
];

/// Known-dangerous single callables in modules that are otherwise unremarkable.
const DANGEROUS_EXACT: &[(&str, &str)] = &[
    ("builtins.eval", "evaluates Python source"),
    ("builtins.exec", "runs Python source"),
    ("builtins.execfile", "runs a Python file"),
    (
        "builtins.compile",
        "compiles Python source into code objects",
    ),
    (
        "builtins.getattr",
        "reaches any attribute (getattr chains to os.system)",
    ),
    (
        "builtins.setattr",
        "rebinds attributes of modules and classes",
    ),
    (
        "builtins.delattr",
        "removes attributes of modules and classes",
    ),
    ("builtins.__import__", "imports arbitrary modules"),
    ("builtins.open", "opens files"),
    ("builtins.file", "opens files"),
    ("builtins.input", "reads from the terminal"),
    ("builtins.breakpoint", "starts the debugger"),
    ("builtins.globals", "reaches module globals"),
    ("builtins.locals", "reaches local variables"),
    ("builtins.vars", "reaches an object's namespace"),
    ("builtins.apply", "calls any callable"),
    ("builtins.reload", "reloads modules"),
    ("builtins.exit", "stops the interpreter"),
    ("builtins.quit", "stops the interpreter"),
    ("builtins.help", "runs a pager"),
    ("builtins.type", "creates classes dynamically"),
    ("builtins.map", "calls a callable over values"),
    ("builtins.filter", "calls a callable over values"),
    ("uuid._get_command_stdout", "runs a command"),
    ("torch.load", "loads another pickle (nested payload)"),
    ("torch._load_global_deps", "loads shared libraries"),
    (
        "torch.storage._load_from_bytes_unsafe",
        "loads pickled bytes",
    ),
    ("numpy.load", "loads pickles from files (allow_pickle)"),
    ("numpy.fromfile", "reads files"),
    ("numpy.tofile", "writes files"),
    ("numpy.save", "writes files"),
    ("numpy.savetxt", "writes files"),
    ("numpy.loadtxt", "reads files"),
    ("numpy.genfromtxt", "reads files"),
    ("numpy.memmap", "maps files"),
    ("copyreg.add_extension", "rewrites the extension registry"),
    ("copyreg._reconstructor_unsafe", "constructs objects"),
    ("ssl.get_server_certificate", "network access"),
];

/// The verdict for `module.name` as the unpickler would resolve it. `torchscript` allows the
/// `__torch__` class namespace, which only TorchScript's own unpickler resolves.
pub fn classify(module: &str, name: &str, torchscript: bool) -> Verdict {
    let (module, name) = canonical(module, name);
    let name = name.as_str();
    let full = format!("{module}.{name}");
    // Exact allowlist entries win over a dangerous parent (joblib's array wrapper lives in the
    // joblib package, whose load functions are dangerous).
    if SAFE_EXACT.contains(&full.as_str()) {
        return Verdict::Safe;
    }
    if let Some(why) = dangerous(&full) {
        return Verdict::Dangerous(why);
    }
    // Dotted names are attribute chains (pathlib + os.system): any suffix may be what is
    // really reached, so every suffix is checked as a path of its own.
    if name.contains('.') {
        let parts: Vec<&str> = name.split('.').collect();
        for i in 0..parts.len() {
            let tail = canonical_module(&parts[i..].join("."));
            if let Some(why) = dangerous(&tail) {
                return Verdict::Dangerous(why);
            }
        }
        return if SAFE_EXACT.contains(&full.as_str()) {
            Verdict::Safe
        } else {
            Verdict::Unknown
        };
    }
    if SAFE_EXACT.contains(&full.as_str()) || is_torch_storage(&module, name) {
        return Verdict::Safe;
    }
    if torchscript && (module == "__torch__" || module.starts_with("__torch__.")) {
        return Verdict::Safe;
    }
    if is_class_name(name)
        && SAFE_CLASS_MODULES
            .iter()
            .any(|m| module == *m || module.starts_with(&format!("{m}.")))
    {
        return Verdict::Safe;
    }
    Verdict::Unknown
}

/// Whether `path` (a canonical `module.name`) or one of its parent modules is dangerous.
fn dangerous(path: &str) -> Option<&'static str> {
    if let Some((_, why)) = DANGEROUS_EXACT.iter().find(|(p, _)| *p == path) {
        return Some(why);
    }
    let mut prefix = path;
    loop {
        if let Some((_, why)) = DANGEROUS_MODULES.iter().find(|(m, _)| *m == prefix) {
            return Some(why);
        }
        match prefix.rsplit_once('.') {
            Some((head, _)) => prefix = head,
            None => return None,
        }
    }
}

/// `torch.FloatStorage`, `torch.cuda.HalfStorage`…: typed storages named in persistent ids.
fn is_torch_storage(module: &str, name: &str) -> bool {
    matches!(module, "torch" | "torch.cuda")
        && name.ends_with("Storage")
        && name.len() > "Storage".len()
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

fn is_class_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `module.name` is one of the functions that unpickle bytes they are given, so that
/// string and bytes arguments are scanned as nested pickles.
pub fn is_loader(module: &str, name: &str) -> bool {
    let (module, name) = canonical(module, name);
    matches!(
        (module.as_str(), name.as_str()),
        ("pickle", "loads" | "load" | "_loads")
            | ("torch" | "numpy", "load")
            | ("torch.serialization", "load" | "_load")
            | ("dill" | "cloudpickle" | "marshal", "loads")
    )
}

/// Whether the import is joblib's array wrapper (raw array bytes follow its BUILD).
pub fn is_joblib_wrapper(module: &str, name: &str) -> bool {
    name == "NumpyArrayWrapper"
        && matches!(
            module,
            "joblib.numpy_pickle" | "sklearn.externals.joblib.numpy_pickle"
        )
}

/// Positions of the arguments that allowlisted `module.name` calls (or instantiates) itself:
/// passing an unknown callable there is calling it.
pub fn called_arguments(module: &str, name: &str) -> &'static [usize] {
    let (module, name) = canonical(module, name);
    match (module.as_str(), name.as_str()) {
        // _rebuild_from_type_v2(func, new_type, args, state): func(*args), then new_type's
        // __setstate__. _reconstructor(cls, base, state): base.__new__(cls, state), then
        // base.__init__(obj, state).
        ("torch._tensor", "_rebuild_from_type_v2") | ("copyreg", "_reconstructor") => &[0, 1],
        // __randomstate_ctor / __generator_ctor(bit_generator_name, bit_generator_ctor);
        // __bit_generator_ctor(bit_generator) instantiates a class given as its argument.
        ("numpy.random._pickle", "__randomstate_ctor" | "__generator_ctor") => &[1],
        ("numpy.random._pickle", "__bit_generator_ctor") => &[0],
        _ => &[],
    }
}

/// Whether `module.name` is `copyreg._reconstructor` (protocol 0 and 1 object rebuilds).
pub fn is_reconstructor(module: &str, name: &str) -> bool {
    canonical(module, name) == ("copyreg".into(), "_reconstructor".into())
}

/// Whether `module.name` is `builtins.object`.
pub fn is_object(module: &str, name: &str) -> bool {
    canonical(module, name) == ("builtins".into(), "object".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_parents_are_dangerous() {
        for (m, n) in [
            ("posix", "system"),
            ("nt", "system"),
            ("__builtin__", "eval"),
            ("_operator", "attrgetter"),
            ("os.path", "join"),
            ("pathlib", "os.system"),
            ("numpy.testing._private.utils", "runstring"),
            ("torch.utils.bottleneck.__main__", "run_cprofile"),
            ("_io", "FileIO"),
            ("uuid", "_get_command_stdout"),
            ("cPickle", "loads"),
            ("fickling", "anything"),
            // CPython's _compat_pickle renames (protocols 0-2).
            ("thread", "start_new_thread"),
            ("__builtin__", "reduce"),
            ("__builtin__", "intern"),
            ("itertools", "imap"),
            ("itertools", "ifilter"),
            ("urllib", "urlopen"),
            ("SimpleHTTPServer", "test"),
            ("xmlrpclib", "ServerProxy"),
            ("_socket", "socket"),
        ] {
            assert!(
                matches!(classify(m, n, false), Verdict::Dangerous(_)),
                "{m}.{n}"
            );
        }
    }

    #[test]
    fn normal_checkpoint_globals_are_safe() {
        for (m, n) in [
            ("torch._utils", "_rebuild_tensor_v2"),
            ("torch", "FloatStorage"),
            ("torch", "BFloat16Storage"),
            ("collections", "OrderedDict"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "dtype"),
            ("sklearn.linear_model._logistic", "LogisticRegression"),
            ("__builtin__", "set"),
            ("copy_reg", "_reconstructor"),
        ] {
            assert_eq!(classify(m, n, false), Verdict::Safe, "{m}.{n}");
        }
        assert_eq!(classify("torch", "Storagex", false), Verdict::Unknown);
        assert_eq!(
            classify("torch._utils", "os.system", false),
            Verdict::Dangerous(
                "process execution and file system access (system, popen, exec*, spawn*)"
            )
        );
        assert_eq!(
            classify("sklearn.linear_model", "load_it", false),
            Verdict::Unknown
        );
        assert_eq!(classify("__torch__.M", "Net", true), Verdict::Safe);
        assert_eq!(classify("__torch__.M", "Net", false), Verdict::Unknown);
    }
}
