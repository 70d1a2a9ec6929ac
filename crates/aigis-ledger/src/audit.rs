//! Auditing a log: full verification ([`verify`]), receipts for one request ([`prove`]) and
//! their offline verification with only the public keys ([`verify_receipt`]).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::event::Event;
use crate::keys::LedgerVerifiers;
use crate::merkle::{self, Hash, RootBuilder};
use crate::note::NoteVerifier;
use crate::store::{LogReader, StoredCheckpoint, tree_from};
use crate::{LedgerError, b64, unb64};

/// The receipt format identifier.
pub const RECEIPT_FORMAT: &str = "aigis-ledger-receipt/v1";
/// Largest receipt accepted by [`verify_receipt`].
pub const MAX_RECEIPT_LEN: usize = 256 * 1024;

/// One problem found by [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The first entry concerned, when one can be named.
    pub index: Option<u64>,
    /// A short kind: `missing`, `edited`, `moved`, `not_canonical`, `checkpoint_mismatch`,
    /// `bad_signature`, `truncated`, `anchor_mismatch`.
    pub kind: &'static str,
    /// What is wrong, in words.
    pub message: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The log's origin.
    pub origin: String,
    /// Entries read.
    pub entries: u64,
    /// Checkpoints whose signatures verified.
    pub checkpoints: u64,
    /// Size of the latest verified checkpoint.
    pub checkpointed_size: u64,
    /// The recomputed root over every entry.
    pub root: String,
    /// Entries after the latest checkpoint (not yet covered by a signature).
    pub unsigned_tail: u64,
    /// Problems, in log order. Empty means the log verifies.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether the log verified.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The first bad entry, if any was named.
    pub fn first_bad_entry(&self) -> Option<u64> {
        self.problems.iter().filter_map(|p| p.index).min()
    }
}

struct SignedHead {
    size: u64,
    root: Hash,
}

fn check_checkpoints(
    stored: &[StoredCheckpoint],
    keys: &LedgerVerifiers,
    problems: &mut Vec<Problem>,
) -> Vec<SignedHead> {
    let cosigners: Vec<NoteVerifier> = keys.cosigner.iter().cloned().collect();
    let mut heads: Vec<SignedHead> = Vec::new();
    for cp in stored {
        match Checkpoint::verify(&cp.note, &keys.log, &cosigners, Some(&keys.origin)) {
            Ok((c, signers)) if c.size == cp.size => {
                if keys.cosigner.is_some() && signers.len() < 2 {
                    problems.push(Problem {
                        index: None,
                        kind: "bad_signature",
                        message: format!("checkpoint at size {} lacks the ML-DSA-65 cosignature", cp.size),
                    });
                }
                heads.push(SignedHead { size: c.size, root: c.root });
            }
            Ok((c, _)) => problems.push(Problem {
                index: None,
                kind: "bad_signature",
                message: format!(
                    "checkpoint stored under size {} is signed for size {}: the checkpoint table was edited",
                    cp.size, c.size
                ),
            }),
            Err(e) => problems.push(Problem {
                index: None,
                kind: "bad_signature",
                message: format!("checkpoint at size {}: {e}", cp.size),
            }),
        }
    }
    heads
}

/// Checks one row on its own (stored leaf, canonical form, index) and returns its leaf hash.
fn check_row(row: &crate::store::Row, problems: &mut Vec<Problem>) -> Hash {
    let leaf = merkle::leaf_hash(&row.event);
    if row.leaf != leaf {
        problems.push(Problem {
            index: Some(row.idx),
            kind: "edited",
            message: format!(
                "entry {}: the event does not match its stored leaf hash (edited)",
                row.idx
            ),
        });
    }
    match Event::from_canonical(&row.event) {
        Ok(e) if e.index != row.idx => problems.push(Problem {
            index: Some(row.idx),
            kind: "moved",
            message: format!(
                "entry {}: the event records index {} (rows reordered or moved)",
                row.idx, e.index
            ),
        }),
        Ok(_) => {}
        Err(e) => problems.push(Problem {
            index: Some(row.idx),
            kind: "not_canonical",
            message: format!("entry {}: {e}", row.idx),
        }),
    }
    leaf
}

/// A precisely named entry inside `range`, the entries of the first checkpoint mismatch,
/// explains it: the range start is then no longer the first bad entry. (One beyond the range
/// does not: the range still holds an altered entry, before it.)
fn unname_explained_mismatch(problems: &mut [Problem], range: &std::ops::Range<u64>) {
    let explained = problems
        .iter()
        .filter(|p| p.kind != "checkpoint_mismatch")
        .filter_map(|p| p.index)
        .any(|i| range.contains(&i));
    if explained {
        for p in problems
            .iter_mut()
            .filter(|p| p.kind == "checkpoint_mismatch")
        {
            p.index = None;
        }
    }
}

/// Verifies a whole log: every checkpoint signature (Ed25519, and the ML-DSA-65 cosignature
/// when its key is given), every entry's canonical form and index, and the recomputed root
/// at every checkpoint size. Successive checkpoints are consistent because both roots are
/// recomputed from the same sequence of leaves. `anchors` are checkpoints kept elsewhere
/// (e.g. by a witness or in a ticket): the log must still contain their trees, which
/// detects a truncation that also removed the later checkpoints.
pub fn verify(
    reader: &mut dyn LogReader,
    keys: &LedgerVerifiers,
    anchors: &[Checkpoint],
) -> Result<VerifyReport, LedgerError> {
    verify_with_progress(reader, keys, anchors, &|_| {})
}

/// Says in the first checkpoint mismatch how many later checkpoints differ because of it.
fn note_consequences(problems: &mut [Problem], mismatches: u64) {
    if mismatches > 1
        && let Some(p) = problems
            .iter_mut()
            .find(|p| p.kind == "checkpoint_mismatch")
    {
        let _ = write!(
            p.message,
            " (and {} later checkpoints differ as a consequence)",
            mismatches - 1
        );
    }
}

/// Entries read between two calls of [`verify_with_progress`]'s `progress`.
const PROGRESS_EVERY: u64 = 1 << 14;

/// [`verify`], calling `progress` with the number of entries read so far every
/// `PROGRESS_EVERY` entries (for a progress bar).
pub fn verify_with_progress(
    reader: &mut dyn LogReader,
    keys: &LedgerVerifiers,
    anchors: &[Checkpoint],
    progress: &dyn Fn(u64),
) -> Result<VerifyReport, LedgerError> {
    let mut problems = Vec::new();
    let stored = reader.checkpoints()?;
    let mut heads = check_checkpoints(&stored, keys, &mut problems);
    let verified_checkpoints = heads.len() as u64;
    heads.extend(anchors.iter().map(|a| SignedHead {
        size: a.size,
        root: a.root,
    }));
    heads.sort_by_key(|h| h.size);
    let mut next_head = 0usize;
    let mut builder = RootBuilder::new();
    let mut last_good_head = 0u64;
    let mut structural = false;
    let mut mismatches = 0u64;
    // The entries `start..end` of the first checkpoint mismatch: one of them is altered.
    let mut mismatch_range = None;
    // A checkpoint of the empty log comes before any row: its root is the empty tree's.
    while let Some(h) = heads.get(next_head).filter(|h| h.size == 0) {
        if h.root != builder.root() {
            mismatches += 1;
            problems.push(Problem {
                index: None,
                kind: "checkpoint_mismatch",
                message: "a checkpoint of the empty log does not sign the empty tree's root".into(),
            });
        }
        next_head += 1;
    }
    let mut on_row = |row: crate::store::Row| -> Result<bool, LedgerError> {
        let expected = builder.size();
        if expected.is_multiple_of(PROGRESS_EVERY) {
            progress(expected);
        }
        if row.idx != expected {
            problems.push(Problem {
                index: Some(expected),
                kind: "missing",
                message: format!(
                    "entry {expected} is missing (the next stored entry is {}): rows were deleted",
                    row.idx
                ),
            });
            structural = true;
            return Ok(false);
        }
        let leaf = check_row(&row, &mut problems);
        builder.push(leaf);
        while let Some(h) = heads.get(next_head).filter(|h| h.size == builder.size()) {
            if builder.root() == h.root {
                last_good_head = h.size;
            } else if mismatches > 0 {
                // Every later checkpoint differs as a consequence of the first difference.
                mismatches += 1;
            } else {
                mismatches += 1;
                mismatch_range = Some(last_good_head..h.size);
                problems.push(Problem {
                    index: Some(last_good_head),
                    kind: "checkpoint_mismatch",
                    message: format!(
                        "the entries do not produce the signed root at size {}: an entry in {}..{} was altered, inserted or reordered",
                        h.size, last_good_head, h.size
                    ),
                });
            }
            next_head += 1;
        }
        Ok(true)
    };
    reader.scan(0, &mut on_row)?;
    let entries = builder.size();
    if !structural && let Some(h) = heads.get(next_head) {
        problems.push(Problem {
            index: Some(entries),
            kind: "truncated",
            message: format!(
                "the log ends at {entries} entries but a checkpoint covers {}: entries {entries}..{} were removed",
                h.size, h.size
            ),
        });
    }
    note_consequences(&mut problems, mismatches);
    if let Some(range) = mismatch_range {
        unname_explained_mismatch(&mut problems, &range);
    }
    let checkpointed_size = stored.last().map_or(0, |c| c.size);
    problems.sort_by_key(|p| p.index.unwrap_or(u64::MAX));
    Ok(VerifyReport {
        origin: keys.origin.clone(),
        entries,
        checkpoints: verified_checkpoints,
        checkpointed_size,
        root: b64(&builder.root()),
        unsigned_tail: entries.saturating_sub(checkpointed_size),
        problems,
    })
}

/// A self-contained proof that one event is in the log: the event, its inclusion proof and
/// the signed checkpoint it is proven against. Verifiable offline with only the public keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// [`RECEIPT_FORMAT`].
    pub format: String,
    /// The event (its canonical encoding is the leaf).
    pub event: Event,
    /// Inclusion proof hashes (base64), from the leaf's sibling up.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint (C2SP note).
    pub checkpoint: String,
    /// The same proof in the `c2sp.org/tlog-proof@v1` text format.
    pub tlog_proof: String,
}

/// Builds a receipt for the event recorded under `request_id`, against the latest
/// checkpoint. Request ids can repeat (a client may send its own `x-request-id`): when more
/// than one event has it, `index` picks one, and without it the error lists their indices.
/// Fails if the event is newer than the latest checkpoint (wait for the next one).
pub fn prove(
    reader: &mut dyn LogReader,
    request_id: &str,
    index: Option<u64>,
) -> Result<Receipt, LedgerError> {
    let rows = reader.find_request(request_id)?;
    let row = match (rows.as_slice(), index) {
        ([], _) => {
            return Err(LedgerError::Config(format!(
                "no event with request id {request_id:?} in this ledger"
            )));
        }
        ([row], None) => row,
        (_, Some(i)) => rows.iter().find(|r| r.idx == i).ok_or_else(|| {
            LedgerError::Config(format!("entry {i} does not have request id {request_id:?}"))
        })?,
        (_, None) => {
            let at: Vec<String> = rows.iter().map(|r| r.idx.to_string()).collect();
            return Err(LedgerError::Config(format!(
                "{} events have request id {request_id:?} (entries {}): choose one with --index",
                rows.len(),
                at.join(", ")
            )));
        }
    };
    let latest = reader
        .checkpoints()?
        .pop()
        .ok_or_else(|| LedgerError::Config("the ledger has no checkpoint yet".into()))?;
    if latest.size <= row.idx {
        return Err(LedgerError::Config(format!(
            "entry {} is not covered by the latest checkpoint (size {}); try again after the next checkpoint",
            row.idx, latest.size
        )));
    }
    let cp_text = crate::note::Note::parse(&latest.note)
        .map_err(|e| LedgerError::Corrupt {
            index: latest.size,
            what: e.to_string(),
        })?
        .text;
    let cp = Checkpoint::from_text(&cp_text).map_err(|e| LedgerError::Corrupt {
        index: latest.size,
        what: e.to_string(),
    })?;
    let tree = tree_from(reader)?;
    let root = tree.root_at(cp.size).map_err(|e| LedgerError::Corrupt {
        index: cp.size,
        what: e.to_string(),
    })?;
    if root != cp.root {
        return Err(LedgerError::Corrupt {
            index: cp.size,
            what: "the stored entries do not match the signed checkpoint; run `aigis audit verify`"
                .into(),
        });
    }
    let proof = tree
        .inclusion_proof(row.idx, cp.size)
        .map_err(|e| LedgerError::Corrupt {
            index: row.idx,
            what: e.to_string(),
        })?;
    let event = Event::from_canonical(&row.event).map_err(|e| LedgerError::Corrupt {
        index: row.idx,
        what: e.to_string(),
    })?;
    let proof_b64: Vec<String> = proof.iter().map(|h| b64(h)).collect();
    let tlog = tlog_proof(row.idx, &proof_b64, &latest.note);
    Ok(Receipt {
        format: RECEIPT_FORMAT.into(),
        event,
        inclusion_proof: proof_b64,
        checkpoint: latest.note,
        tlog_proof: tlog,
    })
}

/// The `c2sp.org/tlog-proof@v1` text of an inclusion proof (base64 hashes) under a signed
/// checkpoint note.
fn tlog_proof(index: u64, proof: &[String], note: &str) -> String {
    let mut tlog = format!("c2sp.org/tlog-proof@v1\nindex {index}\n");
    for p in proof {
        tlog.push_str(p);
        tlog.push('\n');
    }
    tlog.push('\n');
    tlog.push_str(note);
    tlog
}

/// A receipt that failed verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// Not a receipt.
    #[error("not an aigis ledger receipt: {0}")]
    Malformed(String),
    /// The checkpoint's signatures or origin fail.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// The inclusion proof fails.
    #[error("inclusion proof for entry {index}: {source}")]
    Inclusion {
        /// Entry index.
        index: u64,
        /// Why.
        source: merkle::ProofError,
    },
}

/// What a verified receipt proves.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedReceipt {
    /// Log origin.
    pub origin: String,
    /// Entry index.
    pub index: u64,
    /// Checkpoint size the entry is proven in.
    pub tree_size: u64,
    /// Keys whose signatures verified.
    pub signed_by: Vec<String>,
    /// Request id of the event.
    pub request_id: String,
}

/// Verifies a receipt with only the public keys: checkpoint signatures (and cosignature when
/// its key is given), origin, and the inclusion of the event's canonical encoding.
pub fn verify_receipt(
    json: &[u8],
    keys: &LedgerVerifiers,
) -> Result<VerifiedReceipt, ReceiptError> {
    if json.len() > MAX_RECEIPT_LEN {
        return Err(ReceiptError::Malformed(format!(
            "{} bytes exceeds the 256 KiB limit",
            json.len()
        )));
    }
    let r: Receipt = serde_json::from_slice(json).map_err(|e| {
        ReceiptError::Malformed(format!("line {} column {}: {e}", e.line(), e.column()))
    })?;
    if r.format != RECEIPT_FORMAT {
        return Err(ReceiptError::Malformed(format!(
            "format {:?} is not {RECEIPT_FORMAT}",
            r.format
        )));
    }
    let cosigners: Vec<NoteVerifier> = keys.cosigner.iter().cloned().collect();
    let (cp, signers) =
        Checkpoint::verify(&r.checkpoint, &keys.log, &cosigners, Some(&keys.origin))?;
    if keys.cosigner.is_some() && signers.len() < 2 {
        return Err(ReceiptError::Malformed(
            "the checkpoint lacks the ML-DSA-65 cosignature".into(),
        ));
    }
    let proof: Vec<Vec<u8>> = r
        .inclusion_proof
        .iter()
        .map(|h| {
            unb64(h)
                .ok_or_else(|| ReceiptError::Malformed("inclusion proof hash is not base64".into()))
        })
        .collect::<Result<_, _>>()?;
    let leaf = merkle::leaf_hash(&r.event.canonical());
    let index = r.event.index;
    merkle::verify_inclusion(index, cp.size, &leaf, &proof, &cp.root)
        .map_err(|source| ReceiptError::Inclusion { index, source })?;
    // Generic C2SP tools read the text form alone: it must say exactly what was verified.
    if r.tlog_proof != tlog_proof(index, &r.inclusion_proof, &r.checkpoint) {
        return Err(ReceiptError::Malformed(
            "the tlog_proof text disagrees with the receipt's index, inclusion proof or checkpoint"
                .into(),
        ));
    }
    Ok(VerifiedReceipt {
        origin: cp.origin,
        index,
        tree_size: cp.size,
        signed_by: signers,
        request_id: r.event.request_id,
    })
}
