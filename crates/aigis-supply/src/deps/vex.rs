//! `--format cyclonedx-vex`: the scan as a CycloneDX 1.6 JSON document with `components` (each
//! vulnerable package version, identified by its package URL) and `vulnerabilities` (one per
//! merged vulnerability, with its aliases as `references`, a CVSS rating where the record has
//! one, the fix as `recommendation`, and `affects` naming the components).
//!
//! The analysis state is `in_triage`: a version match says the component is affected by the
//! advisory's ranges, not that the vulnerable code is reachable, which only its users can judge.
//! Output is deterministic (sorted, no timestamp or random serial number), so it diffs cleanly.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{Value, json};

use super::ecosystem::Ecosystem;
use super::scan::ScanResult;

/// The package URL of a package version.
pub fn purl(eco: Ecosystem, name: &str, version: &str) -> String {
    let name = match eco {
        Ecosystem::PyPi => eco.normalize_name(name),
        _ => name.to_owned(),
    };
    let encoded = name.replace('@', "%40");
    format!(
        "pkg:{}/{encoded}@{}",
        eco.purl_type(),
        version.replace('@', "%40")
    )
}

fn rating_method(vector: &str) -> &'static str {
    if vector.starts_with("CVSS:4") {
        "CVSSv4"
    } else if vector.starts_with("CVSS:3.1") {
        "CVSSv31"
    } else if vector.starts_with("CVSS:3") {
        "CVSSv3"
    } else {
        "CVSSv2"
    }
}

/// Writes the VEX document for `result`.
pub fn write(result: &ScanResult, tool_version: &str, out: &mut impl Write) -> io::Result<()> {
    let mut components: BTreeMap<String, Value> = BTreeMap::new();
    let mut vulnerabilities: BTreeMap<String, (Value, Vec<String>)> = BTreeMap::new();
    for v in &result.vulnerable {
        let reference = purl(v.ecosystem, &v.name, &v.version);
        components.entry(reference.clone()).or_insert_with(|| {
            json!({
                "type": "library",
                "bom-ref": reference,
                "name": v.name,
                "version": v.version,
                "purl": reference,
            })
        });
        let vuln = &v.vulnerability;
        let entry = vulnerabilities
            .entry(vuln.primary().to_owned())
            .or_insert_with(|| {
                let mut body = json!({
                    "bom-ref": format!("vuln:{}", vuln.primary()),
                    "id": vuln.primary(),
                    "source": {
                        "name": "OSV",
                        "url": format!("https://osv.dev/vulnerability/{}", vuln.primary()),
                    },
                    "references": vuln.all_ids().skip(1).map(|id| json!({
                        "id": id,
                        "source": {"name": "OSV", "url": format!("https://osv.dev/vulnerability/{id}")},
                    })).collect::<Vec<_>>(),
                    "description": vuln.summary,
                    "analysis": {"state": "in_triage"},
                });
                let mut rating = json!({"severity": vuln.severity.as_str()});
                if let Some(score) = vuln.score {
                    rating["score"] = json!(score);
                    rating["method"] = json!(rating_method(&vuln.severity_source));
                    rating["vector"] = json!(vuln.severity_source);
                }
                body["ratings"] = json!([rating]);
                if let Some(fixed) = &vuln.fixed {
                    body["recommendation"] = json!(format!("upgrade to {fixed} or later"));
                }
                (body, Vec::new())
            });
        if !entry.1.contains(&reference) {
            entry.1.push(reference);
        }
    }
    let vulnerabilities: Vec<Value> = vulnerabilities
        .into_values()
        .map(|(mut body, mut refs)| {
            refs.sort();
            body["affects"] = refs
                .into_iter()
                .map(|r| {
                    let version = r
                        .rsplit_once('@')
                        .map(|(_, v)| v.to_owned())
                        .unwrap_or_default();
                    json!({"ref": r, "versions": [{"version": version, "status": "affected"}]})
                })
                .collect();
            body
        })
        .collect();
    let document = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "aigis", "version": tool_version}]},
        },
        "components": components.into_values().collect::<Vec<_>>(),
        "vulnerabilities": vulnerabilities,
    });
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}
