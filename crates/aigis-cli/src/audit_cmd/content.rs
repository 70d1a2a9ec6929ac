//! `aigis audit content`: a captured request's prompt and response, opened with the tenant's
//! age identity and checked against the digests its audit event recorded.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use aigis_ledger::{Event, LedgerKeys};
use anyhow::Context as _;

use super::{ContentPart, Target};
use crate::Format;

pub(super) fn content(
    target: &Target,
    request_id: &str,
    identities: &[aigis_crypto::age::Identity],
    part: Option<ContentPart>,
    output: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let (mut reader, resolved) = target.open()?;
    let dir = resolved.content_dir.as_deref().context(
        "name the content folder: --config aigis.toml (its [ledger.capture]) or --content-dir DIR",
    )?;
    let mut found = Vec::new();
    for row in reader.find_request(request_id)? {
        let event = Event::from_canonical(&row.event)
            .with_context(|| format!("entry {} is unreadable", row.idx))?;
        if let Some(reference) = event.content.clone() {
            found.push((event, reference));
        }
    }
    let Some((event, reference)) = found.pop() else {
        eprintln!("no captured content is recorded for request {request_id}");
        return Ok(ExitCode::from(2));
    };
    let opened = match aigis_ledger::content::open(dir, &reference, identities) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "cannot decrypt the content of request {request_id} (entry {}): {e}",
                event.index
            );
            return Ok(ExitCode::from(2));
        }
    };
    // With the ledger key, check each part against the digest in the (verifiable) log.
    let key = resolved.key.as_deref().and_then(|k| {
        LedgerKeys::load(k)
            .inspect_err(|e| {
                eprintln!(
                    "warning: ledger key {} unusable ({e}): the content is not checked against its digests",
                    k.display()
                );
            })
            .ok()
    });
    let check = |label: &str, bytes: &[u8], digest: Option<&String>| {
        key.as_ref()
            .zip(digest)
            .map(|(k, d)| k.content().matches(label, &event.request_id, bytes, d))
    };
    let request_ok = check("prompt", &opened.request, event.prompt_digest.as_ref());
    let response_ok = check("response", &opened.response, event.response_digest.as_ref());
    let mismatch = request_ok == Some(false) || response_ok == Some(false);
    if let Some(part) = part {
        let bytes = match part {
            ContentPart::Request => &opened.request,
            ContentPart::Response => &opened.response,
        };
        match output {
            Some(p) => {
                std::fs::write(p, bytes).with_context(|| format!("writing {}", p.display()))?;
            }
            None => std::io::stdout().lock().write_all(bytes)?,
        }
    } else {
        print_content(
            &event,
            &reference,
            &opened,
            [request_ok, response_ok],
            format,
        )?;
    }
    Ok(if mismatch {
        eprintln!("content does NOT match the digest recorded in the log");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_content(
    event: &Event,
    reference: &str,
    opened: &aigis_ledger::content::Content,
    checks: [Option<bool>; 2],
    format: Format,
) -> anyhow::Result<()> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let word = |c: Option<bool>| match c {
        Some(true) => "matches the logged digest",
        Some(false) => "DOES NOT match the logged digest",
        None => "not checked (no ledger key)",
    };
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "request_id": event.request_id,
                "index": event.index,
                "content": reference,
                "request": text(&opened.request),
                "response": text(&opened.response),
                "request_digest_matches": checks[0],
                "response_digest_matches": checks[1],
            }))?
        ),
        Format::Table => {
            println!(
                "request {} (entry {}, content {reference})",
                event.request_id, event.index
            );
            println!("--- request ({}) ---", word(checks[0]));
            println!("{}", text(&opened.request));
            println!("--- response ({}) ---", word(checks[1]));
            println!("{}", text(&opened.response));
        }
    }
    Ok(())
}
