//! Turning a [`ScanResult`] into an `aigis-report` [`Report`] (table, JSON, SARIF), and the rule
//! ids `aigis deps` uses.

use aigis_report::{Finding, Location, NotScanned, Report, Severity};

use super::scan::{Excluded, ScanResult, VulnerablePackage};

/// A package version affected by a known vulnerability.
pub const RULE_VULNERABLE: &str = "AIG-DEPS-001";
/// A known vulnerability of an AI package that runs code when a model is loaded.
pub const RULE_LOAD_RCE: &str = "AIG-DEPS-002";
/// A requirement without an exact version.
pub const RULE_UNPINNED: &str = "AIG-DEPS-003";
/// A package name one edit away from a popular AI package.
pub const RULE_TYPOSQUAT: &str = "AIG-DEPS-004";
/// Advisories for an installed package that only give `GIT` ranges (not evaluated offline).
pub const RULE_NOT_EVALUATED: &str = "AIG-DEPS-005";
/// A package or requirement whose environment marker is false on the target environment.
pub const RULE_EXCLUDED: &str = "AIG-DEPS-006";

fn location(file: &str, line: Option<u64>) -> Location {
    let location = Location::new(file);
    match line {
        Some(line) if line > 0 => location.with_line(line),
        _ => location,
    }
}

fn vulnerable_finding(v: &VulnerablePackage) -> Finding {
    let vuln = &v.vulnerability;
    let ids: Vec<&str> = vuln.all_ids().collect();
    let mut message = format!("{} {}: {}", v.name, v.version, vuln.primary());
    let others: Vec<&str> = ids.iter().skip(1).copied().collect();
    if !others.is_empty() {
        message.push_str(" (");
        message.push_str(&others.join(", "));
        message.push(')');
    }
    if !vuln.summary.is_empty() {
        message.push_str(": ");
        message.push_str(&vuln.summary);
    }
    let help = match (&vuln.fixed, &v.fix_all) {
        (_, Some(all)) if vuln.fixed.as_ref() != Some(all) => format!(
            "upgrade {} to {all} (fixes every known advisory of {} {}; {} alone is fixed in {})",
            v.name,
            v.name,
            v.version,
            vuln.primary(),
            vuln.fixed.as_deref().unwrap_or("no known version")
        ),
        (_, Some(all)) => format!("upgrade {} to {all} or later", v.name),
        (Some(fixed), None) => format!(
            "{} is fixed in {fixed}, but another advisory has no fixed version",
            vuln.primary()
        ),
        (None, None) => match &vuln.conflicting_fix {
            Some(named) => format!(
                "the advisory names {named} as fixed but also lists it as affected (a \
                 conflicting record); check the advisory before upgrading"
            ),
            None => "no fixed version is known; consider replacing the package".to_owned(),
        },
    };
    let rule = if v.load_time_rce {
        RULE_LOAD_RCE
    } else {
        RULE_VULNERABLE
    };
    let mut finding = Finding::new(rule, vuln.severity, message, location(&v.file, v.line))
        .with_help(help)
        .with_property("ecosystem", v.ecosystem.as_str())
        .with_property("package", &v.name)
        .with_property("installed_version", &v.version)
        .with_property("advisories", ids.join(","))
        .with_property("severity_source", &vuln.severity_source)
        .with_property("summary", &vuln.summary);
    if let Some(score) = vuln.score {
        finding = finding.with_property("cvss_score", format!("{score:.1}"));
    }
    if let Some(fixed) = &vuln.fixed {
        finding = finding.with_property("fixed_version", fixed);
    }
    if let Some(all) = &v.fix_all {
        finding = finding.with_property("fix_all_version", all);
    }
    if let Some(class) = &vuln.informational {
        finding = finding
            .with_property("informational", class)
            .with_tag(format!("rustsec-{class}"));
    }
    if v.load_time_rce {
        finding = finding.with_tag("code-execution-on-load");
    }
    finding.with_tag("dependency")
}

fn excluded_finding(x: &Excluded, environment: &str) -> Finding {
    Finding::new(
        RULE_EXCLUDED,
        Severity::Info,
        format!(
            "{} {} is not installed on the target environment ({environment}): its marker `{}` \
             is false there, so it was not checked",
            x.name, x.version, x.marker
        ),
        location(&x.file, x.line),
    )
    .with_help(
        "set the environment you deploy with --python-version and --platform to check what it \
         installs",
    )
    .with_property("ecosystem", x.ecosystem.as_str())
    .with_property("package", &x.name)
    .with_property("version", &x.version)
    .with_property("marker", &x.marker)
    .with_property("environment", environment)
}

/// The report of a scan: one finding per vulnerable package occurrence and vulnerability, per
/// unpinned requirement and per typosquat-like name; the inputs that were not (fully) scanned.
pub fn to_report(result: &ScanResult, version: &str) -> Report {
    let mut report = Report::new("aigis", version);
    report.describe_rule(
        RULE_VULNERABLE,
        "dependency with a known vulnerability (OSV)",
    );
    report.describe_rule(
        RULE_LOAD_RCE,
        "AI package with a known code-execution-on-model-load vulnerability",
    );
    report.describe_rule(RULE_UNPINNED, "requirement without an exact version");
    report.describe_rule(RULE_TYPOSQUAT, "package name close to a popular AI package");
    report.describe_rule(
        RULE_NOT_EVALUATED,
        "advisory with GIT ranges only: cannot be evaluated offline",
    );
    report.describe_rule(
        RULE_EXCLUDED,
        "dependency not installed on the target environment (PEP 508 marker false)",
    );
    for v in &result.vulnerable {
        report.add(vulnerable_finding(v));
    }
    for (file, u) in &result.unpinned {
        report.add(
            Finding::new(
                RULE_UNPINNED,
                Severity::Low,
                format!("{} {} is not pinned to one version", u.name, u.spec),
                location(file, Some(u.line)),
            )
            .with_help(
                "pin an exact version (`name==X.Y.Z`, ideally with --hash) or use a lockfile; \
                 an unpinned requirement installs whatever is newest, vulnerable or not",
            )
            .with_property("ecosystem", u.ecosystem.as_str())
            .with_property("package", &u.name)
            .with_property("requirement", &u.spec),
        );
    }
    for t in &result.typosquats {
        report.add(
            Finding::new(
                RULE_TYPOSQUAT,
                Severity::Low,
                format!(
                    "{} looks like the popular package {} but is a different package",
                    t.name, t.resembles
                ),
                location(&t.file, t.line),
            )
            .with_help(format!(
                "check that {} is the package you meant; if it is a typo, install {}",
                t.name, t.resembles
            ))
            .with_property("ecosystem", t.ecosystem.as_str())
            .with_property("package", &t.name)
            .with_property("resembles", t.resembles),
        );
    }
    for n in &result.not_evaluated {
        report.add(
            Finding::new(
                RULE_NOT_EVALUATED,
                Severity::Info,
                format!(
                    "{} {}: {} give only GIT commit ranges, which cannot be evaluated against \
                     a version offline",
                    n.name,
                    n.version,
                    n.ids.join(", ")
                ),
                Location::new(&n.file),
            )
            .with_property("package", &n.name)
            .with_property("installed_version", &n.version)
            .with_property("advisories", n.ids.join(",")),
        );
    }
    for x in &result.excluded {
        report.add(excluded_finding(x, &result.environment));
    }
    for (file, reason) in &result.not_scanned {
        report.add_not_scanned(NotScanned::new(file, reason));
    }
    report
}
