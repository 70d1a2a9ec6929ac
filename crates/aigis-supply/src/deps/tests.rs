//! Unit tests of version semantics, range evaluation, OSV parsing, severity and matching.

use std::cmp::Ordering;
use std::fmt::Write as _;

use aigis_report::Severity;
use proptest::prelude::*;

use super::ecosystem::Ecosystem;
use super::matching::match_version;
use super::npm_range::NpmRange;
use super::osv::{self, Advisory, Affected, Event, Parsed, Range, Syntax};
use super::range::{is_affected, range_contains};
use super::severity::{AdvisorySeverity, cvss_score};
use super::{ai, time, yaml};

fn cmp(eco: Ecosystem, a: &str, b: &str) -> Ordering {
    let a = eco.parse_version(a).unwrap();
    let b = eco.parse_version(b).unwrap();
    a.compare(&b).unwrap()
}

#[test]
fn pep440_ordering() {
    use Ordering::{Equal, Greater, Less};
    let py = Ecosystem::PyPi;
    // Normalisation: case, separators, implicit zeros, alternative spellings.
    assert_eq!(cmp(py, "1.0", "1.0.0"), Equal);
    assert_eq!(cmp(py, "1.0RC1", "1.0rc1"), Equal);
    assert_eq!(cmp(py, "1.0-alpha-1", "1.0a1"), Equal);
    assert_eq!(cmp(py, "1.0.post1", "1.0-1"), Equal);
    assert_eq!(cmp(py, "v1.0", "1.0"), Equal);
    // dev < alpha < beta < rc < final < post; local above public.
    let order = [
        "1.0.dev1",
        "1.0a1.dev1",
        "1.0a1",
        "1.0a2",
        "1.0b1",
        "1.0rc1",
        "1.0",
        "1.0+local",
        "1.0.post1.dev1",
        "1.0.post1",
        "1.1.dev0",
        "1.1",
    ];
    for pair in order.windows(2) {
        assert_eq!(cmp(py, pair[0], pair[1]), Less, "{} < {}", pair[0], pair[1]);
    }
    // Epochs win over everything.
    assert_eq!(cmp(py, "1!0.1", "2024.1"), Greater);
    assert!(py.parse_version("not a version").is_none());
}

#[test]
fn semver_ordering_crates_npm_go() {
    use Ordering::{Equal, Less};
    let c = Ecosystem::CratesIo;
    assert_eq!(cmp(c, "1.0.0-alpha", "1.0.0-alpha.1"), Less);
    assert_eq!(cmp(c, "1.0.0-alpha.1", "1.0.0-alpha.beta"), Less);
    assert_eq!(cmp(c, "1.0.0-beta.2", "1.0.0-beta.11"), Less);
    assert_eq!(cmp(c, "1.0.0-rc.1", "1.0.0"), Less);
    assert_eq!(cmp(c, "0.0.0-0", "0.0.0"), Less);
    // Build metadata has no precedence.
    assert_eq!(cmp(c, "0.11.0+wasi-snapshot-preview1", "0.11.0"), Equal);
    // Lenient forms advisories use.
    assert_eq!(cmp(Ecosystem::Npm, "1.2", "1.2.0"), Equal);
    let go = Ecosystem::Go;
    // Pseudo-versions sort as pre-releases of the next patch/minor, as Go sorts them.
    assert_eq!(
        cmp(go, "v0.0.0-20191109021931-daa7c04131f5", "v0.0.1"),
        Less
    );
    assert_eq!(
        cmp(go, "v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4"),
        Less
    );
    assert_eq!(
        cmp(go, "v1.2.3", "v1.2.4-0.20191109021931-daa7c04131f5"),
        Less
    );
    assert_eq!(cmp(go, "v2.0.0+incompatible", "2.0.0"), Equal);
    assert!(
        go.parse_version("v1.2").is_none(),
        "Go versions have three components"
    );
}

#[test]
fn name_normalisation() {
    assert_eq!(
        Ecosystem::PyPi.normalize_name("Foo.Bar__baz-"),
        "foo-bar-baz-"
    );
    assert_eq!(
        Ecosystem::PyPi.normalize_name("llama_cpp_python"),
        "llama-cpp-python"
    );
    assert_eq!(
        Ecosystem::CratesIo.normalize_name("Serde_JSON"),
        "serde-json"
    );
    assert_eq!(Ecosystem::Npm.normalize_name("@Scope/Pkg"), "@Scope/Pkg");
}

fn range(semver: bool, events: &[Event]) -> Range {
    Range {
        semver,
        events: events.to_vec(),
    }
}

fn entry(eco: Ecosystem, ranges: Vec<Range>, versions: &[&str]) -> Affected {
    Affected {
        ecosystem: eco,
        name: "pkg".into(),
        ranges,
        versions: versions.iter().map(|s| (*s).to_owned()).collect(),
        git_only: false,
    }
}

fn i(s: &str) -> Event {
    Event::Introduced(s.into())
}
fn f(s: &str) -> Event {
    Event::Fixed(s.into())
}
fn l(s: &str) -> Event {
    Event::LastAffected(s.into())
}
fn x(s: &str) -> Event {
    Event::Limit(s.into())
}

#[test]
fn osv_range_events() {
    let py = Ecosystem::PyPi;
    let r = range(false, &[i("0"), f("1.13.1")]);
    assert!(range_contains(py, &r, "1.13.0"));
    assert!(
        range_contains(py, &r, "1.13.1rc1"),
        "pre-release of the fix is below it"
    );
    assert!(!range_contains(py, &r, "1.13.1"));
    assert!(!range_contains(py, &r, "2.0"));
    // Two intervals in one range, events out of order.
    let r = range(false, &[f("2.0.5"), i("2.0"), f("1.2.3"), i("1.0")]);
    assert!(range_contains(py, &r, "1.1"));
    assert!(!range_contains(py, &r, "1.5"));
    assert!(range_contains(py, &r, "2.0.4"));
    assert!(!range_contains(py, &r, "0.9"));
    // last_affected is inclusive.
    let r = range(false, &[i("1.0"), l("1.4")]);
    assert!(range_contains(py, &r, "1.4"));
    assert!(!range_contains(py, &r, "1.4.post1"));
    // limit caps the range.
    let r = range(true, &[i("0.0.0-0"), x("2.0.0")]);
    assert!(range_contains(Ecosystem::CratesIo, &r, "1.9.9"));
    assert!(!range_contains(Ecosystem::CratesIo, &r, "2.0.0"));
    let r = range(true, &[i("1.0.0"), x("*")]);
    assert!(range_contains(Ecosystem::CratesIo, &r, "9.0.0"));
    // introduced and fixed at the same version affect nothing; fixed then introduced at the
    // same version (one interval ending where the next starts) affects it.
    let r = range(false, &[i("1.0"), f("1.0")]);
    assert!(!range_contains(py, &r, "1.0"));
    let r = range(
        false,
        &[
            i("0"),
            f("3.1.1"),
            i("3.2.0"),
            f("3.2.2"),
            i("3.1.1"),
            f("3.2.0"),
        ],
    );
    assert!(range_contains(py, &r, "3.1.1"));
    assert!(range_contains(py, &r, "3.2.0"));
    assert!(!range_contains(py, &r, "3.2.2"));
    // A range of unparsable events affects nothing (never "everything").
    let r = range(false, &[i("garbage"), f("more garbage")]);
    assert!(!range_contains(py, &r, "1.0"));
    // Conflicting: fixed below introduced is evaluated literally.
    let r = range(false, &[i("2.0"), f("1.0")]);
    assert!(range_contains(py, &r, "2.5"));
    assert!(!range_contains(py, &r, "1.5"));
}

#[test]
fn explicit_versions_list() {
    let e = entry(Ecosystem::PyPi, Vec::new(), &["1.0", "1.1"]);
    let v = Ecosystem::PyPi.parse_version("1.0.0").unwrap();
    assert!(is_affected(&e, "1.0.0", &v), "1.0.0 == 1.0 under PEP 440");
    let v = Ecosystem::PyPi.parse_version("1.2").unwrap();
    assert!(!is_affected(&e, "1.2", &v));
}

fn advisory(id: &str, aliases: &[&str], level: Option<Severity>, ranges: Vec<Range>) -> Advisory {
    Advisory {
        id: id.into(),
        aliases: aliases.iter().map(|s| (*s).to_owned()).collect(),
        summary: format!("summary of {id}"),
        severity: AdvisorySeverity {
            level,
            ..AdvisorySeverity::default()
        },
        modified: String::new(),
        affected: vec![entry(Ecosystem::PyPi, ranges, &[])],
    }
}

#[test]
fn aliases_merge_and_smallest_fix() {
    let advisories = vec![
        advisory(
            "PYSEC-1",
            &["CVE-1", "GHSA-1"],
            Some(Severity::Medium),
            vec![range(false, &[i("0"), f("1.5")])],
        ),
        advisory(
            "GHSA-1",
            &["CVE-1"],
            Some(Severity::Critical),
            vec![range(false, &[i("0"), f("1.5")])],
        ),
        advisory(
            "PYSEC-2",
            &[],
            None,
            vec![range(false, &[i("1.0"), f("1.6"), i("2.0"), f("2.1")])],
        ),
        advisory(
            "PYSEC-3",
            &[],
            Some(Severity::Low),
            vec![range(false, &[i("3.0")])],
        ),
    ];
    let v = Ecosystem::PyPi.parse_version("1.2").unwrap();
    let m = match_version(Ecosystem::PyPi, "1.2", &v, &advisories);
    assert_eq!(m.vulnerabilities.len(), 2, "{m:#?}");
    let merged = &m.vulnerabilities[0];
    assert_eq!(merged.ids, ["GHSA-1", "PYSEC-1"]);
    assert_eq!(merged.aliases, ["CVE-1"]);
    assert_eq!(
        merged.severity,
        Severity::Critical,
        "worst of the merged records"
    );
    assert_eq!(merged.fixed.as_deref(), Some("1.5"));
    let unrated = &m.vulnerabilities[1];
    assert_eq!(
        unrated.severity,
        Severity::High,
        "no severity counts as high"
    );
    assert_eq!(unrated.fixed.as_deref(), Some("1.6"));
    // 1.5 still has PYSEC-2; 1.6 fixes both; 2.1 is not the smallest.
    assert_eq!(m.fix_all.as_deref(), Some("1.6"));
}

#[test]
fn smallest_fix_skips_candidates_still_affected() {
    let advisories = vec![
        advisory("A", &[], None, vec![range(false, &[i("0"), f("2.0")])]),
        advisory("B", &[], None, vec![range(false, &[i("1.5"), f("2.5")])]),
    ];
    let v = Ecosystem::PyPi.parse_version("1.6").unwrap();
    let m = match_version(Ecosystem::PyPi, "1.6", &v, &advisories);
    assert_eq!(m.fix_all.as_deref(), Some("2.5"));
    // last_affected only: no fix known.
    let advisories = vec![advisory(
        "C",
        &[],
        None,
        vec![range(false, &[i("0"), l("3.0")])],
    )];
    let m = match_version(Ecosystem::PyPi, "1.6", &v, &advisories);
    assert_eq!(m.vulnerabilities.len(), 1);
    assert_eq!(m.fix_all, None);
}

#[test]
fn parse_json_and_yaml_records() {
    let json = br#"{"id":"RUSTSEC-2099-0001","modified":"2024-01-02T00:00:00Z","aliases":["CVE-2099-1"],
      "summary":"bad thing","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
      "affected":[{"package":{"ecosystem":"crates.io","name":"foo"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0.0.0-0"},{"fixed":"1.2.3"}]}]},
                  {"package":{"ecosystem":"Debian:12","name":"foo"}}]}"#;
    let Parsed::Advisory(a) = osv::parse_record(json, Syntax::Json).unwrap() else {
        panic!("not an advisory")
    };
    assert_eq!(a.affected.len(), 1, "other ecosystems dropped");
    assert_eq!(a.severity.level, Some(Severity::Critical));
    assert_eq!(a.severity.score, Some(9.8));
    let yaml_text = "id: PYSEC-2099-1\ndetails: First sentence here. Second one.\naffected:\n- package:\n    name: Foo_Bar\n    ecosystem: PyPI\n  ranges:\n  - type: GIT\n    repo: https://example.invalid/x\n    events:\n    - introduced: \"0\"\n    - fixed: abc\n  - type: ECOSYSTEM\n    events:\n    - introduced: \"0\"\n    - fixed: 1.10\n  versions:\n  - \"1.0\"\n";
    let Parsed::Advisory(a) = osv::parse_record(yaml_text.as_bytes(), Syntax::Yaml).unwrap() else {
        panic!("not an advisory")
    };
    assert_eq!(a.summary, "First sentence here.");
    assert_eq!(a.affected[0].ranges.len(), 1, "GIT range dropped");
    assert_eq!(
        a.affected[0].ranges[0].events[1],
        Event::Fixed("1.10".into()),
        "YAML 1.10 stays the version 1.10, not the float 1.1"
    );
    assert!(!a.affected[0].git_only);
    assert_eq!(a.severity.level, None);
    let withdrawn = br#"{"id":"X-1","withdrawn":"2024-01-01T00:00:00Z","affected":[]}"#;
    assert!(matches!(
        osv::parse_record(withdrawn, Syntax::Json).unwrap(),
        Parsed::Withdrawn(_)
    ));
    let err = osv::parse_record(b"{\n\"id\": 5\n}", Syntax::Json).unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    let err = osv::parse_record(b"id: [unclosed\n", Syntax::Yaml).unwrap_err();
    assert!(err.line >= 1, "{err}");
}

#[test]
fn severity_sources() {
    assert_eq!(
        cvss_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
        Some(9.8)
    );
    assert_eq!(
        cvss_score("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"),
        Some(8.1)
    );
    let v4 = cvss_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N").unwrap();
    assert!((v4 - 9.3).abs() < 0.05, "{v4}");
    assert_eq!(cvss_score("garbage"), None);
    let ghsa = br#"{"id":"GHSA-x","database_specific":{"severity":"MODERATE"},
      "affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#;
    let Parsed::Advisory(a) = osv::parse_record(ghsa, Syntax::Json).unwrap() else {
        panic!()
    };
    assert_eq!(a.severity.level, Some(Severity::Medium));
    let rustsec_info = br#"{"id":"RUSTSEC-x","affected":[{"package":{"ecosystem":"crates.io","name":"a"},
      "database_specific":{"informational":"unmaintained"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0.0.0-0"}]}]}]}"#;
    let Parsed::Advisory(a) = osv::parse_record(rustsec_info, Syntax::Json).unwrap() else {
        panic!()
    };
    assert_eq!(a.severity.level, Some(Severity::Low));
    assert_eq!(a.severity.informational.as_deref(), Some("unmaintained"));
}

#[test]
fn yaml_reader_limits() {
    assert!(yaml::parse("a: &x 1\nb: *x\n").is_err(), "aliases refused");
    let deep = "[".repeat(200) + &"]".repeat(200);
    let err = yaml::parse(&deep).unwrap_err();
    assert!(err.message.contains("nesting"), "{err}");
    let v = yaml::parse("k: ~\nt: true\nn: 1.10\nq: '1.10'\n").unwrap();
    assert_eq!(v["k"], serde_json::Value::Null);
    assert_eq!(v["t"], serde_json::Value::Bool(true));
    assert_eq!(v["n"], "1.10");
}

#[test]
fn npm_ranges() {
    let sat = |r: &str, v: &str| {
        NpmRange::parse(r)
            .unwrap()
            .satisfies(&semver::Version::parse(v).unwrap())
    };
    assert!(sat("^1.2.3", "1.9.0"));
    assert!(!sat("^1.2.3", "2.0.0"));
    assert!(!sat("^1.2.3", "1.2.2"));
    assert!(sat("^0.2.3", "0.2.9"));
    assert!(!sat("^0.2.3", "0.3.0"));
    assert!(sat("^0.0.3", "0.0.3"));
    assert!(!sat("^0.0.3", "0.0.4"));
    assert!(sat("~1.2.3", "1.2.9"));
    assert!(!sat("~1.2.3", "1.3.0"));
    assert!(sat("~1", "1.9.9"));
    assert!(sat("1.x", "1.0.0"));
    assert!(!sat("1.x", "2.0.0"));
    assert!(sat("*", "3.4.5"));
    assert!(sat(">=1.0.0 <2", "1.5.0"));
    assert!(sat(">= 1.0.0 < 2", "1.5.0"));
    assert!(!sat(">=1.0.0 <2", "2.0.0"));
    assert!(sat("<1 || >=3", "3.1.0"));
    assert!(!sat("<1 || >=3", "2.1.0"));
    assert!(sat("1.2.3 - 2.3", "2.3.9"));
    assert!(!sat("1.2.3 - 2.3", "2.4.0"));
    assert!(sat("1.2.3 - 2.3.4", "2.3.4"));
    assert!(sat(">1.2", "1.3.0"));
    assert!(!sat(">1.2", "1.2.9"));
    assert!(!sat("<=1.2", "1.3.0"));
    assert!(sat("<=1.2", "1.2.9"));
    // Pre-releases only within the same major.minor.patch tuple.
    assert!(sat("^1.2.3-beta.1", "1.2.3-beta.2"));
    assert!(!sat("^1.2.3-beta.1", "1.2.4-beta.1"));
    assert!(!sat("^1.2.3", "1.5.0-rc.1"));
    assert!(NpmRange::parse("1.2.3").unwrap().is_exact());
    assert!(!NpmRange::parse("^1.2.3").unwrap().is_exact());
    assert!(NpmRange::parse(">= ").is_err());
    assert!(NpmRange::parse("1.a.3").is_err());
}

#[test]
fn dates() {
    assert_eq!(time::parse_date("1970-01-02"), Some(86_400));
    assert_eq!(time::parse_date("2025-02-30"), None);
    assert_eq!(
        time::parse_rfc3339("2021-03-26T20:01:00Z"),
        time::parse_date("2021-03-26").map(|d| d + 20 * 3600 + 60)
    );
    assert_eq!(
        time::parse_rfc3339("2021-03-26T22:01:00.5+02:00"),
        time::parse_rfc3339("2021-03-26T20:01:00Z")
    );
    assert_eq!(
        time::format_date(time::parse_date("2024-02-29").unwrap()),
        "2024-02-29"
    );
    assert_eq!(time::parse_duration("30d"), Some(30 * 86_400));
    assert_eq!(time::parse_duration("30"), None);
}

#[test]
fn typosquats() {
    let py = Ecosystem::PyPi;
    assert_eq!(ai::typosquat_of(py, "tensorflwo"), Some("tensorflow"));
    assert_eq!(ai::typosquat_of(py, "transfomers"), Some("transformers"));
    assert_eq!(ai::typosquat_of(py, "scikitlearn"), Some("scikit-learn"));
    assert_eq!(
        ai::typosquat_of(py, "Scikit_Learn"),
        None,
        "same package after PEP 503"
    );
    assert_eq!(ai::typosquat_of(py, "torch"), None);
    assert_eq!(
        ai::typosquat_of(py, "scapy"),
        None,
        "a known real neighbour"
    );
    assert_eq!(ai::typosquat_of(py, "langchain-cohere"), None);
    assert_eq!(ai::typosquat_of(py, "flask"), None);
    assert_eq!(ai::typosquat_of(Ecosystem::Npm, "opena1"), Some("openai"));
    assert_eq!(ai::typosquat_of(Ecosystem::CratesIo, "tokio"), None);
}

#[test]
fn load_time_rce_classification() {
    assert!(ai::is_load_time_rce(
        Ecosystem::PyPi,
        "torch",
        "torch.load with weights_only=True leads to remote code execution"
    ));
    assert!(!ai::is_load_time_rce(
        Ecosystem::PyPi,
        "torch",
        "denial of service in foo"
    ));
    assert!(!ai::is_load_time_rce(
        Ecosystem::PyPi,
        "requests",
        "arbitrary code execution"
    ));
}

fn pep440_strategy() -> impl Strategy<Value = String> {
    (
        0u64..3,
        0u64..20,
        0u64..20,
        prop::option::of((prop::sample::select(vec!["a", "b", "rc"]), 0u64..5)),
        prop::option::of(0u64..5),
        prop::option::of(0u64..5),
    )
        .prop_map(|(epoch, major, minor, pre, post, dev)| {
            let mut s = String::new();
            if epoch > 0 {
                write!(s, "{epoch}!").unwrap();
            }
            write!(s, "{major}.{minor}").unwrap();
            if let Some((tag, n)) = pre {
                write!(s, "{tag}{n}").unwrap();
            }
            if let Some(n) = post {
                write!(s, ".post{n}").unwrap();
            }
            if let Some(n) = dev {
                write!(s, ".dev{n}").unwrap();
            }
            s
        })
}

proptest! {
    /// `introduced: A, fixed: B` contains exactly A <= v < B, whatever the order of events.
    #[test]
    fn interval_matches_comparisons(
        a in pep440_strategy(), b in pep440_strategy(), v in pep440_strategy(), swap in any::<bool>()
    ) {
        let py = Ecosystem::PyPi;
        let events = if swap { vec![f(&b), i(&a)] } else { vec![i(&a), f(&b)] };
        let r = range(false, &events);
        let (pa, pb, pv) = (
            py.parse_version(&a).unwrap(),
            py.parse_version(&b).unwrap(),
            py.parse_version(&v).unwrap(),
        );
        prop_assume!(pa.compare(&pb).unwrap().is_lt());
        let expected = pa.compare(&pv).unwrap().is_le() && pv.compare(&pb).unwrap().is_lt();
        prop_assert_eq!(range_contains(py, &r, &v), expected);
    }

    /// PEP 440 ordering is a total order consistent with equality of the normal form.
    #[test]
    fn pep440_total_order(a in pep440_strategy(), b in pep440_strategy()) {
        let py = Ecosystem::PyPi;
        let (pa, pb) = (py.parse_version(&a).unwrap(), py.parse_version(&b).unwrap());
        prop_assert_eq!(pa.compare(&pb).unwrap(), pb.compare(&pa).unwrap().reverse());
    }

    /// The fix a scan recommends is never itself affected.
    #[test]
    fn recommended_fix_is_not_affected(
        bounds in prop::collection::vec((0u64..30, 1u64..5), 1..4), installed in 0u64..40
    ) {
        let advisories: Vec<Advisory> = bounds
            .iter()
            .enumerate()
            .map(|(n, (start, len))| {
                let events = vec![i(&format!("{start}.0")), f(&format!("{}.0", start + len))];
                advisory(&format!("A-{n}"), &[], None, vec![range(false, &events)])
            })
            .collect();
        let text = format!("{installed}.0");
        let v = Ecosystem::PyPi.parse_version(&text).unwrap();
        let m = match_version(Ecosystem::PyPi, &text, &v, &advisories);
        if let Some(fix) = &m.fix_all {
            let fv = Ecosystem::PyPi.parse_version(fix).unwrap();
            for a in &advisories {
                prop_assert!(!is_affected(&a.affected[0], fix, &fv));
            }
        }
    }

    /// Arbitrary text never panics the YAML reader, the OSV parser or the npm range parser.
    #[test]
    fn parsers_do_not_panic(text in ".{0,200}") {
        let _ = yaml::parse(&text);
        let _ = osv::parse_record(text.as_bytes(), Syntax::Yaml);
        let _ = osv::parse_record(text.as_bytes(), Syntax::Json);
        let _ = NpmRange::parse(&text);
    }
}
