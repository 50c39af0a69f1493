//! The opaque, resumable positions of watchers, as the client sees them:
//! URL-safe base64 of a small binary record (a kind byte, a version byte,
//! then fixed-width little-endian fields). A client only hands a cursor
//! back; nothing in it is trusted beyond what it positions (a model id of
//! another project simply never matches a watched model).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

const EPOCHS: u8 = b'E';
const MODELS: u8 = b'M';
const VERSION: u8 = 1;

/// Where a watcher is in one model's epochs: every batch (transaction) up
/// to `seq` is delivered, and of batch `seq + 1` the epochs up to
/// `after` (its epochs go out in epoch_num order) when it was split
/// across messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The last batch delivered whole (0: none).
    pub seq: i64,
    /// The last epoch_num delivered of batch `seq + 1`, if any of it was.
    pub after: Option<i64>,
}

impl Position {
    /// Before the first batch: the whole history follows.
    pub const START: Self = Self { seq: 0, after: None };
}

/// A `WatchEpochs` cursor: a position per watched model, and how many
/// models the project had created when it was taken (`projects.model_seq`;
/// a model with a higher `created_seq`, found later by a filter, is newer
/// than the cursor: all its epochs are new to the watcher). Cursors of
/// older servers held the highest model id there, which the migration
/// made every existing model's `created_seq`, so they still compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCursor {
    /// The project's `model_seq` seen.
    pub models_created: i64,
    /// Model id -> position.
    pub positions: BTreeMap<i64, Position>,
}

/// What a `WatchModels` watcher knows of one model: enough to tell which
/// kinds of change happened since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelState {
    /// `created_at` (a purged model's name reused is another model).
    pub created_at: i64,
    /// The run status (its protobuf number).
    pub status: i32,
    /// Soft-deleted.
    pub deleted: bool,
    /// A hash of the tags (keys and values).
    pub tags: u64,
}

/// A `WatchModels` cursor: per model (keyed by a hash of its name, which
/// is unique in the project), the state last delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelsCursor {
    /// Name hash -> state.
    pub states: BTreeMap<u64, ModelState>,
}

/// FNV-1a: a stable hash (the same on every replica and release, unlike
/// the standard library's).
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(std::iter::once(&0xff)) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

impl EpochCursor {
    /// The text handed to the client.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(10 + self.positions.len() * 25);
        bytes.extend([EPOCHS, VERSION]);
        bytes.extend(self.models_created.to_le_bytes());
        for (id, position) in &self.positions {
            bytes.extend(id.to_le_bytes());
            bytes.extend(position.seq.to_le_bytes());
            match position.after {
                None => bytes.push(0),
                Some(after) => {
                    bytes.push(1);
                    bytes.extend(after.to_le_bytes());
                }
            }
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses a cursor of `WatchEpochs`; INVALID_ARGUMENT naming `field`
    /// for anything else.
    pub fn decode(field: &str, text: &str) -> Result<Self> {
        let mut reader = Reader::new(field, text, EPOCHS)?;
        let mut cursor = Self {
            models_created: reader.i64()?,
            positions: BTreeMap::new(),
        };
        while !reader.is_done() {
            let id = reader.i64()?;
            let seq = reader.i64()?;
            let after = match reader.u8()? {
                0 => None,
                1 => Some(reader.i64()?),
                _ => return Err(reader.bad()),
            };
            if seq < 0 {
                return Err(reader.bad());
            }
            cursor.positions.insert(id, Position { seq, after });
        }
        Ok(cursor)
    }
}

impl ModelsCursor {
    /// The text handed to the client.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(2 + self.states.len() * 29);
        bytes.extend([MODELS, VERSION]);
        for (name, state) in &self.states {
            bytes.extend(name.to_le_bytes());
            bytes.extend(state.created_at.to_le_bytes());
            bytes.extend(state.status.to_le_bytes());
            bytes.push(u8::from(state.deleted));
            bytes.extend(state.tags.to_le_bytes());
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses a cursor of `WatchModels`; INVALID_ARGUMENT naming `field`
    /// for anything else.
    pub fn decode(field: &str, text: &str) -> Result<Self> {
        let mut reader = Reader::new(field, text, MODELS)?;
        let mut cursor = Self::default();
        while !reader.is_done() {
            let name = reader.u64()?;
            let created_at = reader.i64()?;
            let status = i32::from_le_bytes(reader.take::<4>()?);
            let deleted = match reader.u8()? {
                0 => false,
                1 => true,
                _ => return Err(reader.bad()),
            };
            let tags = reader.u64()?;
            cursor.states.insert(
                name,
                ModelState {
                    created_at,
                    status,
                    deleted,
                    tags,
                },
            );
        }
        Ok(cursor)
    }
}

struct Reader<'a> {
    field: &'a str,
    bytes: Vec<u8>,
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(field: &'a str, text: &str, kind: u8) -> Result<Self> {
        let what = if kind == EPOCHS {
            "WatchEpochs"
        } else {
            "WatchModels"
        };
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| {
            Error::invalid(
                field,
                format!("not a cursor (pass back the `cursor` of a {what} message unchanged)"),
            )
        })?;
        match bytes.get(..2) {
            Some([k, VERSION]) if *k == kind => Ok(Self { field, bytes, at: 2 }),
            _ => Err(Error::invalid(
                field,
                format!("not a cursor of {what} (pass back the `cursor` of a {what} message unchanged)"),
            )),
        }
    }

    fn is_done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn bad(&self) -> Error {
        Error::invalid(self.field, "the cursor is damaged (pass it back unchanged)")
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let slice = self.bytes.get(self.at..self.at + N).ok_or_else(|| self.bad())?;
        self.at += N;
        let mut array = [0; N];
        array.copy_from_slice(slice);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take::<1>()?[0])
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_cursors_round_trip() {
        let mut cursor = EpochCursor {
            models_created: 42,
            positions: BTreeMap::new(),
        };
        assert_eq!(EpochCursor::decode("cursor", &cursor.encode()).unwrap(), cursor);
        cursor.positions.insert(3, Position { seq: 7, after: None });
        cursor.positions.insert(
            9,
            Position {
                seq: 0,
                after: Some(-5),
            },
        );
        assert_eq!(EpochCursor::decode("cursor", &cursor.encode()).unwrap(), cursor);
    }

    #[test]
    fn models_cursors_round_trip() {
        let mut cursor = ModelsCursor::default();
        cursor.states.insert(
            stable_hash(&[b"m"]),
            ModelState {
                created_at: 5,
                status: 2,
                deleted: true,
                tags: 77,
            },
        );
        assert_eq!(ModelsCursor::decode("cursor", &cursor.encode()).unwrap(), cursor);
    }

    #[test]
    fn foreign_or_damaged_cursors_are_invalid_arguments_naming_the_field() {
        let epochs = EpochCursor::default().encode();
        let models = ModelsCursor::default().encode();
        for (text, decoded) in [
            ("%%%", EpochCursor::decode("cursor", "%%%").map(|_| ())),
            ("models", EpochCursor::decode("cursor", &models).map(|_| ())),
            ("epochs", ModelsCursor::decode("cursor", &epochs).map(|_| ())),
            (
                "truncated",
                EpochCursor::decode("cursor", &URL_SAFE_NO_PAD.encode([EPOCHS, VERSION, 1, 2])).map(|_| ()),
            ),
        ] {
            let error = decoded.unwrap_err();
            assert!(matches!(error, Error::InvalidArgument(_)), "{text}: {error}");
            assert!(error.to_string().starts_with("cursor: "), "{text}: {error}");
        }
    }

    #[test]
    fn the_stable_hash_separates_parts() {
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_eq!(stable_hash(&[b"x"]), stable_hash(&[b"x"]));
    }
}
