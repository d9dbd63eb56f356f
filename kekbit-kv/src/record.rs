//! The store's log records: what one journal record holds.
//!
//! Every integer is little-endian. The first byte is the kind:
//!
//! | kind | name   | rest |
//! |------|--------|------|
//! | 1    | SET    | key length `u32`, key, value (the rest, possibly empty) |
//! | 2    | DELETE | key (the rest) |
//! | 3    | BATCH  | op count `u32`, then per op: kind `u8` (1 or 2), key length `u32`, key, and for a SET value length `u32`, value |
//! | 4    | CLEAR  | nothing |
//!
//! A delete is its own kind, so an empty value stays an empty value. A
//! batch is one journal record, so the journal's checksum covers all of it:
//! replay applies all of a batch or none. `docs/FORMAT.md` has the same
//! table; a test keeps them in agreement.

/// Kind byte of a SET record.
pub(crate) const KIND_SET: u8 = 1;
/// Kind byte of a DELETE record.
pub(crate) const KIND_DELETE: u8 = 2;
/// Kind byte of a BATCH record.
pub(crate) const KIND_BATCH: u8 = 3;
/// Kind byte of a CLEAR record.
pub(crate) const KIND_CLEAR: u8 = 4;

/// One change, borrowed from a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    Set(&'a [u8], &'a [u8]),
    Delete(&'a [u8]),
    Clear,
}

/// Appends a SET record to `out`.
pub(crate) fn encode_set(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.reserve(5 + key.len() + value.len());
    out.push(KIND_SET);
    out.extend_from_slice(&len32(key.len()).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Appends a DELETE record to `out`.
pub(crate) fn encode_delete(out: &mut Vec<u8>, key: &[u8]) {
    out.reserve(1 + key.len());
    out.push(KIND_DELETE);
    out.extend_from_slice(key);
}

/// Appends a CLEAR record to `out`.
pub(crate) fn encode_clear(out: &mut Vec<u8>) {
    out.push(KIND_CLEAR);
}

/// Appends a BATCH record of `ops` (no CLEAR among them) to `out`.
pub(crate) fn encode_batch<'a>(out: &mut Vec<u8>, ops: impl ExactSizeIterator<Item = Op<'a>>) {
    out.push(KIND_BATCH);
    out.extend_from_slice(&len32(ops.len()).to_le_bytes());
    for op in ops {
        match op {
            Op::Set(k, v) => {
                out.push(KIND_SET);
                out.extend_from_slice(&len32(k.len()).to_le_bytes());
                out.extend_from_slice(k);
                out.extend_from_slice(&len32(v.len()).to_le_bytes());
                out.extend_from_slice(v);
            }
            Op::Delete(k) => {
                out.push(KIND_DELETE);
                out.extend_from_slice(&len32(k.len()).to_le_bytes());
                out.extend_from_slice(k);
            }
            Op::Clear => unreachable!("a batch holds no CLEAR"),
        }
    }
}

/// Sizes are checked against the journal's record limit (< 4 GiB) before
/// anything is encoded, so this never saturates in practice.
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Calls `apply` for each change `record` holds, in order, after checking
/// that all of it decodes (so a bad record applies nothing).
pub(crate) fn decode(record: &[u8], mut apply: impl FnMut(Op<'_>)) -> Result<(), String> {
    match record.first() {
        Some(&KIND_SET) => {
            let mut c = Cursor(&record[1..]);
            let klen = c.u32()?;
            let key = c.take(klen as usize)?;
            apply(Op::Set(key, c.0));
            Ok(())
        }
        Some(&KIND_DELETE) => {
            apply(Op::Delete(&record[1..]));
            Ok(())
        }
        Some(&KIND_CLEAR) if record.len() == 1 => {
            apply(Op::Clear);
            Ok(())
        }
        Some(&KIND_CLEAR) => Err(format!(
            "a CLEAR record of {} bytes (it has 1)",
            record.len()
        )),
        Some(&KIND_BATCH) => {
            // Validate everything first: a batch applies whole or not at all.
            walk_batch(&record[1..], |_| {})?;
            walk_batch(&record[1..], apply)
        }
        Some(&kind) => Err(format!("unknown record kind {kind}")),
        None => Err("an empty record".to_string()),
    }
}

fn walk_batch(body: &[u8], mut apply: impl FnMut(Op<'_>)) -> Result<(), String> {
    let mut c = Cursor(body);
    let count = c.u32()?;
    for i in 0..count {
        let kind = c.take(1).map_err(|e| format!("batch op {i}: {e}"))?[0];
        let klen = c.u32()?;
        let key = c.take(klen as usize)?;
        match kind {
            KIND_SET => {
                let vlen = c.u32()?;
                let value = c.take(vlen as usize)?;
                apply(Op::Set(key, value));
            }
            KIND_DELETE => apply(Op::Delete(key)),
            other => return Err(format!("batch op {i}: unknown kind {other}")),
        }
    }
    if !c.0.is_empty() {
        return Err(format!(
            "{} bytes after the last of {count} batch ops",
            c.0.len()
        ));
    }
    Ok(())
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "the record ends {} bytes short of a field of {n}",
                n - self.0.len()
            ));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

    fn ops(record: &[u8]) -> Result<Ops, String> {
        let mut out = Vec::new();
        decode(record, |op| match op {
            Op::Set(k, v) => out.push((k.to_vec(), Some(v.to_vec()))),
            Op::Delete(k) => out.push((k.to_vec(), None)),
            Op::Clear => out.push((b"*".to_vec(), None)),
        })?;
        Ok(out)
    }

    #[test]
    fn set_with_an_empty_value_is_not_a_delete() {
        let mut r = Vec::new();
        encode_set(&mut r, b"k", b"");
        assert_eq!(r.len(), 6);
        assert_eq!(ops(&r).unwrap(), vec![(b"k".to_vec(), Some(vec![]))]);
        r.clear();
        encode_delete(&mut r, b"k");
        assert_eq!(ops(&r).unwrap(), vec![(b"k".to_vec(), None)]);
        r.clear();
        encode_set(&mut r, b"", b"");
        assert_eq!(ops(&r).unwrap(), vec![(vec![], Some(vec![]))]);
    }

    #[test]
    fn batches_round_trip() {
        let mut r = Vec::new();
        let list = [Op::Set(b"a", b"1"), Op::Delete(b"b"), Op::Set(b"", b"")];
        encode_batch(&mut r, list.iter().copied());
        assert_eq!(
            ops(&r).unwrap(),
            vec![
                (b"a".to_vec(), Some(b"1".to_vec())),
                (b"b".to_vec(), None),
                (vec![], Some(vec![]))
            ]
        );
        r.clear();
        encode_batch(&mut r, [].into_iter());
        assert_eq!(ops(&r).unwrap(), vec![]);
    }

    #[test]
    fn every_truncation_of_a_batch_applies_nothing() {
        let mut r = Vec::new();
        encode_batch(
            &mut r,
            [Op::Set(b"key", b"value"), Op::Delete(b"gone")].into_iter(),
        );
        for cut in 1..r.len() {
            let mut applied = 0;
            assert!(decode(&r[..cut], |_| applied += 1).is_err(), "cut {cut}");
            assert_eq!(applied, 0, "cut {cut}");
        }
        let mut longer = r.clone();
        longer.push(0);
        assert!(decode(&longer, |_| {}).is_err());
    }

    #[test]
    fn bad_records_are_errors() {
        assert!(decode(&[], |_| {}).is_err());
        assert!(decode(&[9], |_| {}).is_err());
        assert!(decode(&[KIND_SET, 1, 0], |_| {}).is_err());
        assert!(decode(&[KIND_SET, 5, 0, 0, 0, b'a'], |_| {}).is_err());
        assert!(decode(&[KIND_CLEAR, 0], |_| {}).is_err());
        assert!(decode(&[KIND_BATCH, 1, 0, 0, 0, 7, 0, 0, 0, 0], |_| {}).is_err());
        assert!(decode(&[KIND_BATCH, 255, 255, 255, 255], |_| {}).is_err());
        let mut r = Vec::new();
        encode_clear(&mut r);
        assert_eq!(ops(&r).unwrap(), vec![(b"*".to_vec(), None)]);
    }
}
