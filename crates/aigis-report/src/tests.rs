//! Tests of the report as a whole: exit codes, order, and what each renderer writes.

use crate::{
    EXIT_CLEAN, EXIT_FINDINGS, EXIT_INCOMPLETE, Error, Evidence, Finding, Format, Location,
    NotScanned, Report, SARIF_SCHEMA, Severity,
};

fn render(report: &Report, format: Format) -> String {
    let mut out = Vec::new();
    assert!(report.render(format, &mut out).is_ok());
    String::from_utf8(out).unwrap_or_default()
}

/// Findings added out of order, with every optional part used at least once.
fn sample() -> Report {
    let mut report = Report::new("aigis", "0.1.0");
    report.add(Finding::new(
        "AIG-CONFIG-002",
        Severity::Low,
        "trust_remote_code is enabled",
        Location::new("config.json")
            .with_line(12)
            .with_column(7)
            .with_key_path("/auto_map"),
    ));
    report.add(
        Finding::new(
            "AIG-PICKLE-001",
            Severity::Critical,
            "pickle imports os.system",
            Location::new("model.zip")
                .with_member("archive/data.pkl")
                .with_byte_offset(52),
        )
        .with_evidence(Evidence::text("GLOBAL os system"))
        .with_help("load it with weights_only=True or convert it to safetensors")
        .with_tag("code-execution"),
    );
    report.add(
        Finding::new(
            "AIG-SECRET-001",
            Severity::High,
            "OpenAI API key in model card",
            Location::new("README.md").with_line(3),
        )
        .with_evidence(Evidence::masked("sk-proj-abcdefghijklmnopqrstuvwxyz")),
    );
    report.add(Finding::new(
        "AIG-PICKLE-001",
        Severity::Critical,
        "pickle imports builtins.exec",
        Location::new("a.pkl").with_byte_offset(10),
    ));
    report.add_not_scanned(NotScanned::new(
        "huge.bin",
        "larger than the 4 GiB size limit",
    ));
    report.describe_rule("AIG-PICKLE-001", "Pickle can run code when loaded");
    report
}

#[test]
fn exit_code_follows_the_contract_for_every_combination() {
    let worst_cases = std::iter::once(None).chain(Severity::ALL.map(Some));
    for worst in worst_cases {
        for incomplete in [false, true] {
            let mut report = Report::new("aigis", "0");
            if let Some(severity) = worst {
                report.add(Finding::new("R", severity, "m", Location::new("f")));
                report.add(Finding::new("R", Severity::Info, "m", Location::new("g")));
            }
            if incomplete {
                report.add_not_scanned(NotScanned::new("x", "unreadable"));
            }
            for fail_on in Severity::ALL {
                let expected = match worst {
                    Some(severity) if severity >= fail_on => EXIT_FINDINGS,
                    _ if incomplete => EXIT_INCOMPLETE,
                    _ => EXIT_CLEAN,
                };
                assert_eq!(
                    report.exit_code(fail_on),
                    expected,
                    "worst {worst:?}, incomplete {incomplete}, fail_on {fail_on}"
                );
            }
        }
    }
}

#[test]
fn exit_code_examples() {
    let report = sample();
    assert_eq!(
        report.exit_code(Severity::Critical),
        1,
        "findings win over not scanned"
    );
    let mut only_low = Report::new("aigis", "0");
    only_low.add(Finding::new("R", Severity::Low, "m", Location::new("f")));
    assert_eq!(only_low.exit_code(Severity::High), 0);
    assert_eq!(only_low.exit_code(Severity::Low), 1);
    only_low.add_not_scanned(NotScanned::new("x", "limit"));
    assert_eq!(only_low.exit_code(Severity::High), 2);
    assert_eq!(Report::new("aigis", "0").exit_code(Severity::Info), 0);
}

#[test]
fn max_severity_and_summary_count_every_finding() {
    let report = sample();
    assert_eq!(report.max_severity(), Some(Severity::Critical));
    let summary = report.summary();
    assert_eq!(
        [
            summary.critical,
            summary.high,
            summary.medium,
            summary.low,
            summary.info
        ],
        [2, 1, 0, 1, 0]
    );
    assert_eq!((summary.findings(), summary.not_scanned), (4, 1));
    assert_eq!(Report::new("aigis", "0").max_severity(), None);
}

#[test]
fn findings_sort_by_severity_then_location_then_rule() {
    let mut report = Report::new("aigis", "0");
    let at = |path: &str| Location::new(path);
    report.add(Finding::new("B", Severity::Low, "m", at("a")));
    report.add(Finding::new("B", Severity::High, "m", at("b")));
    report.add(Finding::new("A", Severity::High, "m", at("b")));
    report.add(Finding::new("Z", Severity::High, "m", at("a")));
    report.add(Finding::new("A", Severity::High, "m", at("b").with_line(2)));
    report.add(Finding::new(
        "A",
        Severity::High,
        "m",
        at("b").with_line(10),
    ));
    let order: Vec<String> = report
        .sorted_findings()
        .iter()
        .map(|f| format!("{} {} {}", f.severity(), f.location(), f.rule_id()))
        .collect();
    assert_eq!(
        order,
        [
            "high a Z",
            "high b A",
            "high b B",
            "high b:2 A",
            "high b:10 A",
            "low a B"
        ]
    );
}

#[test]
fn output_does_not_depend_on_insertion_order() {
    let report = sample();
    let mut reversed = Report::new("aigis", "0.1.0");
    for finding in report.findings().iter().rev() {
        reversed.add(finding.clone());
    }
    for item in report.not_scanned() {
        reversed.add_not_scanned(item.clone());
    }
    reversed.describe_rule("AIG-PICKLE-001", "Pickle can run code when loaded");
    for format in Format::ALL {
        assert_eq!(
            render(&report, format),
            render(&reversed, format),
            "{format}"
        );
    }
}

#[test]
fn json_round_trips() {
    let report = sample();
    let json = render(&report, Format::Json);
    let read = Report::from_json(&json);
    assert!(read.is_ok(), "{read:?}");
    let read = read.unwrap_or_else(|_| Report::new("", ""));
    assert_eq!(read.sorted_findings(), report.sorted_findings());
    assert_eq!(read.summary(), report.summary());
    assert_eq!(read.tool(), report.tool());
    assert_eq!(render(&read, Format::Json), json);
}

#[test]
fn json_shape_is_stable() {
    let mut report = Report::new("aigis", "0.1.0").with_information_uri("https://aigis.invalid");
    report.add(
        Finding::new(
            "AIG-SECRET-001",
            Severity::High,
            "API key",
            Location::new("a.env").with_line(1),
        )
        .with_evidence(Evidence::masked("sk-abcdefghijklmnop")),
    );
    let expected = r#"{
  "format_version": 1,
  "tool": {
    "name": "aigis",
    "version": "0.1.0",
    "information_uri": "https://aigis.invalid"
  },
  "summary": {
    "critical": 0,
    "high": 1,
    "medium": 0,
    "low": 0,
    "info": 0,
    "not_scanned": 0
  },
  "findings": [
    {
      "rule_id": "AIG-SECRET-001",
      "severity": "high",
      "message": "API key",
      "location": {
        "path": "a.env",
        "line": 1
      },
      "evidence": {
        "text": "sk-a…op",
        "masked": true
      }
    }
  ],
  "not_scanned": []
}
"#;
    assert_eq!(render(&report, Format::Json), expected);
}

#[test]
fn json_of_another_format_version_is_refused_with_a_hint() {
    let result = Report::from_json(r#"{"format_version": 2, "tool": {}, "findings": []}"#);
    assert!(matches!(
        result,
        Err(Error::UnsupportedFormatVersion {
            found: 2,
            supported: 1
        })
    ));
    assert!(matches!(Report::from_json("[]"), Err(Error::Json(_))));
}

#[test]
fn table_golden() {
    let expected = "\
SEVERITY  RULE            LOCATION                              MESSAGE
critical  AIG-PICKLE-001  a.pkl (byte 10)                       pickle imports builtins.exec
critical  AIG-PICKLE-001  model.zip!archive/data.pkl (byte 52)  pickle imports os.system
          evidence: GLOBAL os system
          hint: load it with weights_only=True or convert it to safetensors
high      AIG-SECRET-001  README.md:3                           OpenAI API key in model card
          evidence: sk-p…yz
low       AIG-CONFIG-002  config.json:12:7#/auto_map            trust_remote_code is enabled

not scanned:
  huge.bin: larger than the 4 GiB size limit

4 findings (2 critical, 1 high, 0 medium, 1 low, 0 info); 1 not scanned
";
    assert_eq!(render(&sample(), Format::Table), expected);
}

#[test]
fn table_of_a_clean_report() {
    let expected = "no findings\n\n0 findings (0 critical, 0 high, 0 medium, 0 low, 0 info)\n";
    assert_eq!(render(&Report::new("aigis", "0"), Format::Table), expected);
}

#[test]
fn no_renderer_leaks_a_masked_secret() {
    let secret = "sk-proj-abcdefghijklmnopqrstuvwxyz";
    let report = sample();
    for format in Format::ALL {
        let output = render(&report, format);
        assert!(!output.contains(secret), "{format}");
        assert!(!output.contains("abcdefghij"), "{format}");
    }
}

#[test]
fn sarif_has_the_documented_shape() {
    let sarif: serde_json::Value =
        serde_json::from_str(&render(&sample(), Format::Sarif)).unwrap_or_default();
    assert_eq!(sarif["$schema"], SARIF_SCHEMA);
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules = &run["tool"]["driver"]["rules"];
    let rule_ids: Vec<&str> = rules
        .as_array()
        .map(|rules| rules.iter().filter_map(|r| r["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        rule_ids,
        ["AIG-CONFIG-002", "AIG-PICKLE-001", "AIG-SECRET-001"]
    );
    assert_eq!(
        rules[1]["shortDescription"]["text"],
        "Pickle can run code when loaded"
    );
    assert_eq!(rules[0]["shortDescription"]["text"], "AIG-CONFIG-002");
    assert_eq!(rules[1]["defaultConfiguration"]["level"], "error");
    assert_eq!(rules[1]["properties"]["security-severity"], "9.5");

    let first = &run["results"][0];
    assert_eq!(first["ruleId"], "AIG-PICKLE-001");
    assert_eq!(first["ruleIndex"], 1);
    assert_eq!(first["level"], "error");
    assert_eq!(first["properties"]["severity"], "critical");
    let high = &run["results"][2];
    assert_eq!(high["properties"]["evidence"], "sk-p…yz");
    assert_eq!(
        high["locations"][0]["physicalLocation"]["region"]["startLine"],
        3
    );
    let member = &run["results"][1]["locations"][0];
    assert_eq!(
        member["physicalLocation"]["artifactLocation"]["uri"],
        "model.zip"
    );
    assert_eq!(member["physicalLocation"]["region"]["byteOffset"], 52);
    assert_eq!(member["properties"]["archiveMember"], "archive/data.pkl");

    let invocation = &run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let notification = &invocation["toolExecutionNotifications"][0];
    assert_eq!(notification["level"], "error");
    assert_eq!(
        notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "huge.bin"
    );
}

#[test]
fn sarif_of_a_clean_report_is_successful_with_no_results() {
    let sarif: serde_json::Value =
        serde_json::from_str(&render(&Report::new("aigis", "0"), Format::Sarif))
            .unwrap_or_default();
    let run = &sarif["runs"][0];
    assert_eq!(run["results"], serde_json::json!([]));
    assert_eq!(run["tool"]["driver"]["rules"], serde_json::json!([]));
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);
}

#[test]
fn formats_parse_the_names_they_print() {
    for format in Format::ALL {
        assert_eq!(format.to_string().parse::<Format>().ok(), Some(format));
    }
    let error = "xml".parse::<Format>().err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("unknown report format `xml`; expected one of: table, json, sarif")
    );
}

#[test]
fn merge_keeps_everything_from_both() {
    let mut left = Report::new("aigis", "0");
    left.add(Finding::new("A", Severity::Low, "m", Location::new("a")));
    let mut right = Report::new("other", "9");
    right.add(Finding::new("B", Severity::High, "m", Location::new("b")));
    right.add_not_scanned(NotScanned::new("c", "unreadable"));
    right.describe_rule("B", "b");
    left.merge(right);
    assert_eq!(left.findings().len(), 2);
    assert_eq!(left.not_scanned().len(), 1);
    assert_eq!(left.rule_description("B"), Some("b"));
    assert_eq!(left.tool().name(), "aigis");
}
