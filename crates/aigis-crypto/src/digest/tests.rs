use std::fs;
use std::path::Path;
use std::process::Command;

use super::*;

fn no_progress(_: u64) {}

/// A tree with nested directories, an empty file, a large file spanning many buffers, and
/// names that sort differently as bytes than by naive component order.
fn generate_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("a-b")).unwrap();
    fs::write(root.join("abc.txt"), b"abc").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("a/b/c/deep.bin"), [7u8; 1000]).unwrap();
    fs::write(root.join("a-b/x"), b"x").unwrap();
    fs::write(root.join("a/z"), b"z").unwrap();
    fs::write(root.join("ünïcode.json"), b"{}").unwrap();
    // 2.5 MiB of a fixed pseudo-random pattern: many BUF_LEN reads.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..(5 * 1024 * 1024 / 2))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    fs::write(root.join("weights.bin"), big).unwrap();
}

#[test]
fn known_answers_for_small_files() {
    let dir = tempfile::tempdir().unwrap();
    generate_tree(dir.path());
    let sha = TreeHasher::new(DigestAlgo::Sha256)
        .hash(dir.path(), &no_progress)
        .unwrap();
    let find = |m: &Manifest, p: &str| m.files.iter().find(|f| f.path == p).unwrap().digest.clone();
    // FIPS 180-2 example "abc" and the empty-string digests.
    assert_eq!(
        find(&sha, "abc.txt"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        find(&sha, "empty"),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let b3 = TreeHasher::new(DigestAlgo::Blake3)
        .hash(dir.path(), &no_progress)
        .unwrap();
    // BLAKE3 of the empty input (official test vectors).
    assert_eq!(
        find(&b3, "empty"),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
    assert_eq!(
        find(&b3, "weights.bin"),
        blake3::hash(&fs::read(dir.path().join("weights.bin")).unwrap())
            .to_hex()
            .to_string()
    );
}

#[test]
fn sha256_matches_sha256sum() {
    let dir = tempfile::tempdir().unwrap();
    generate_tree(dir.path());
    let Ok(out) = Command::new("sha256sum")
        .arg("weights.bin")
        .arg("a/b/c/deep.bin")
        .current_dir(dir.path())
        .output()
    else {
        eprintln!("notice: sha256sum not found; skipping the peer comparison");
        return;
    };
    let m = TreeHasher::new(DigestAlgo::Sha256)
        .hash(dir.path(), &no_progress)
        .unwrap();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (digest, path) = line.split_once("  ").unwrap();
        assert_eq!(
            m.files.iter().find(|f| f.path == path).unwrap().digest,
            digest,
            "{path}"
        );
    }
}

#[test]
fn manifest_is_sorted_canonical_and_thread_count_independent() {
    let dir = tempfile::tempdir().unwrap();
    generate_tree(dir.path());
    let runs: Vec<String> = [1, 2, 4, 1]
        .into_iter()
        .map(|n| {
            TreeHasher::new(DigestAlgo::Sha256)
                .with_threads(n)
                .hash(dir.path(), &no_progress)
                .unwrap()
                .to_json()
        })
        .collect();
    assert!(runs.windows(2).all(|w| w[0] == w[1]));
    let m = Manifest::from_json(runs[0].as_bytes()).unwrap();
    let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "a-b/x",
            "a/b/c/deep.bin",
            "a/z",
            "abc.txt",
            "empty",
            "weights.bin",
            "ünïcode.json"
        ],
        "sorted by UTF-8 bytes ('-' 0x2d < '/' 0x2f < 'b' 0x62)"
    );
    assert!(runs[0].starts_with(
        r#"{"version":1,"algorithm":"sha256","files":[{"path":"a-b/x","size":1,"digest":"#
    ));
    assert_eq!(m.total_size(), 3 + 1000 + 1 + 1 + 2 + 5 * 1024 * 1024 / 2);
    let subjects = m.in_toto_subjects();
    assert_eq!(subjects[3]["name"], "abc.txt");
    assert_eq!(subjects[3]["digest"]["sha256"], m.files[3].digest);
}

#[test]
fn progress_reports_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    generate_tree(dir.path());
    let total = std::sync::atomic::AtomicU64::new(0);
    let m = TreeHasher::new(DigestAlgo::Blake3)
        .with_threads(2)
        .hash(dir.path(), &|n| {
            total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
    assert_eq!(total.into_inner(), m.total_size());
}

#[test]
fn symlinks_are_refused_or_recorded_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"outside the tree").unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("model.bin"), b"m").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("dirlink")).unwrap();

    let err = TreeHasher::new(DigestAlgo::Sha256)
        .hash(dir.path(), &no_progress)
        .unwrap_err();
    assert!(matches!(err, DigestError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("not followed"), "{err}");

    let m = TreeHasher::new(DigestAlgo::Sha256)
        .with_symlinks(SymlinkPolicy::Record)
        .hash(dir.path(), &no_progress)
        .unwrap();
    assert_eq!(m.files.len(), 1, "only the regular file is hashed");
    assert_eq!(
        m.symlinks
            .iter()
            .map(|s| s.path.as_str())
            .collect::<Vec<_>>(),
        ["dirlink", "link"]
    );
    assert!(!m.to_json().contains("outside the tree"));
    assert!(Manifest::from_json(m.to_json().as_bytes()).is_ok());
}

#[test]
fn special_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    let err = TreeHasher::new(DigestAlgo::Sha256)
        .hash(dir.path(), &no_progress)
        .unwrap_err();
    assert!(err.to_string().contains("socket"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    if Command::new("mkfifo")
        .arg(dir.path().join("fifo"))
        .status()
        .is_ok_and(|s| s.success())
    {
        let err = TreeHasher::new(DigestAlgo::Sha256)
            .hash(dir.path(), &no_progress)
            .unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        // Even named directly, a FIFO is not opened (that would block).
        assert!(
            TreeHasher::new(DigestAlgo::Sha256)
                .hash(&dir.path().join("fifo"), &no_progress)
                .is_err()
        );
    }
}

#[test]
fn unsafe_names_are_refused() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xffname")),
        b"",
    )
    .unwrap();
    let err = TreeHasher::new(DigestAlgo::Sha256)
        .hash(dir.path(), &no_progress)
        .unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("..\\evil"), b"").unwrap();
    let err = TreeHasher::new(DigestAlgo::Sha256)
        .hash(dir.path(), &no_progress)
        .unwrap_err();
    assert!(err.to_string().contains('\\'), "{err}");

    for bad in ["", "/etc/passwd", "a/../b", "./a", "a//b", "a/", "x\ny"] {
        assert!(check_relative_path(bad).is_err(), "{bad:?}");
    }
    check_relative_path("a/b.c/d").unwrap();
}

#[test]
fn manifest_parsing_rejects_traversal_and_disorder() {
    let d = "0".repeat(64);
    let good = format!(
        r#"{{"version":1,"algorithm":"sha256","files":[{{"path":"a","size":1,"digest":"{d}"}}]}}"#
    );
    Manifest::from_json(good.as_bytes()).unwrap();
    for bad in [
        good.replace("\"a\"", "\"../a\""),
        good.replace("\"version\":1", "\"version\":2"),
        good.replace(&d, "xyz"),
        good.replace(
            "}]}",
            &format!(r#"}},{{"path":"a","size":1,"digest":"{d}"}}]}}"#),
        ),
        good.replace("\"size\":1", "\"size\":1,\"extra\":0"),
    ] {
        assert!(Manifest::from_json(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn a_single_file_root_is_hashed_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("m.gguf"), b"abc").unwrap();
    std::os::unix::fs::symlink(dir.path().join("m.gguf"), dir.path().join("alias")).unwrap();
    let m = TreeHasher::new(DigestAlgo::Sha256)
        .hash(&dir.path().join("m.gguf"), &no_progress)
        .unwrap();
    assert_eq!(m.files[0].path, "m.gguf");
    // The root the caller names may be a link; it is resolved (only links inside a tree are refused).
    let via_link = TreeHasher::new(DigestAlgo::Sha256)
        .hash(&dir.path().join("alias"), &no_progress)
        .unwrap();
    assert_eq!(via_link.files[0].digest, m.files[0].digest);
}

#[test]
fn component_order_puts_directories_before_longer_names() {
    let mut paths = vec!["a.txt", "a/b.bin", "a-b/x", "a/b/c", "ab"];
    paths.sort_by(|a, b| cmp_path_components(a, b));
    assert_eq!(paths, ["a/b/c", "a/b.bin", "a-b/x", "a.txt", "ab"]);
}

#[test]
fn ignore_matches_whole_components_only() {
    let ignore = vec![".git".to_string(), "docs/readme.md".to_string()];
    assert!(is_ignored(".git", &ignore));
    assert!(is_ignored(".git/HEAD", &ignore));
    assert!(!is_ignored(".github/x", &ignore));
    assert!(is_ignored("docs/readme.md", &ignore));
    assert!(!is_ignored("docs/readme.md.bak", &ignore));
}

#[test]
fn ignored_paths_are_not_walked() {
    let dir = tempfile::tempdir().unwrap();
    generate_tree(dir.path());
    fs::create_dir(dir.path().join(".git")).unwrap();
    // A symlink under an ignored directory must not make the walk fail.
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join(".git/link")).unwrap();
    let m = TreeHasher::new(DigestAlgo::Sha256)
        .with_ignore(vec![".git".into(), "a".into()])
        .hash(dir.path(), &no_progress)
        .unwrap();
    assert!(m.files.iter().all(|f| !f.path.starts_with("a/")));
    assert!(m.files.iter().any(|f| f.path == "a-b/x"));
}

#[test]
fn shards_cover_every_byte_and_match_range_hashes() {
    let dir = tempfile::tempdir().unwrap();
    generate_tree(dir.path());
    let hasher = TreeHasher::new(DigestAlgo::Sha256).with_threads(3);
    let plan = hasher.plan(dir.path()).unwrap();
    let shard = 300_000;
    let shards = hasher.hash_shards(&plan, shard, &no_progress).unwrap();
    let big = fs::read(dir.path().join("weights.bin")).unwrap();
    let mine: Vec<_> = shards.iter().filter(|s| s.path == "weights.bin").collect();
    assert_eq!(mine.len(), big.len().div_ceil(300_000));
    for s in &mine {
        let part = &big[usize::try_from(s.start).unwrap()..usize::try_from(s.end).unwrap()];
        let want = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, part));
        assert_eq!(s.digest, want, "{}:{}:{}", s.path, s.start, s.end);
    }
    assert_eq!(mine.last().unwrap().end, big.len() as u64);
    // Empty files have no shard; order is by path components then offset.
    assert!(shards.iter().all(|s| s.path != "empty"));
    for w in shards.windows(2) {
        let ord = cmp_path_components(&w[0].path, &w[1].path).then(w[0].start.cmp(&w[1].start));
        assert_eq!(ord, std::cmp::Ordering::Less);
    }
    assert!(hasher.hash_shards(&plan, 0, &no_progress).is_err());
}
