//! `Serializable` and `Deserializable`: how keys and values become bytes and
//! come back, with persistent-kv's names, and decoding that fails instead of
//! panicking.

use std::borrow::Cow;
use std::fmt;

/// Turns a key or a value into the bytes the store keeps.
///
/// Implemented for `String`, `str`, `Vec<u8>`, `[u8]`, `bool` and every
/// integer from 8 to 128 bits (little-endian, stored in as many bytes as the
/// type has: a `u32` key takes 4 bytes). The two items persistent-kv needs
/// to pick its key layout, [`IS_FIXED_SIZE`](Self::IS_FIXED_SIZE) and
/// [`serialize_fixed_size`](Self::serialize_fixed_size), have defaults here,
/// so implementations written for persistent-kv compile, and new ones need
/// only [`serialize`](Self::serialize).
///
/// # Example
///
/// ```
/// use kekbit_kv::Serializable;
/// assert_eq!(&*7u16.serialize(), &[7, 0]);
/// assert_eq!(&*"ab".serialize(), b"ab");
/// ```
pub trait Serializable {
    /// Whether every value of the type serializes to at most 8 bytes.
    /// Informational here: every key is stored in as many bytes as it has.
    const IS_FIXED_SIZE: bool = false;
    /// The bytes: borrowed where the type holds them already.
    fn serialize(&self) -> Cow<'_, [u8]>;
    /// persistent-kv's 8-byte form of small fixed-size keys; unused here.
    fn serialize_fixed_size(&self) -> Option<[u8; 8]> {
        None
    }
}

/// Why bytes did not decode as the requested type.
///
/// # Example
///
/// ```
/// use kekbit_kv::Deserializable;
/// let err = u32::try_from_bytes(&[1, 2]).unwrap_err();
/// assert_eq!(err.to_string(), "2 bytes do not decode as u32: needs exactly 4 bytes");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The type asked for.
    pub type_name: &'static str,
    /// How many bytes there were.
    pub len: usize,
    /// What was wrong with them.
    pub reason: Cow<'static, str>,
}

impl DecodeError {
    /// An error for `len` bytes that are not a `T`, for `reason`.
    ///
    /// ```
    /// let e = kekbit_kv::DecodeError::new::<bool>(1, "not 0 or 1");
    /// assert_eq!(e.type_name, "bool");
    /// ```
    pub fn new<T: ?Sized>(len: usize, reason: impl Into<Cow<'static, str>>) -> Self {
        DecodeError {
            type_name: std::any::type_name::<T>(),
            len,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes do not decode as {}: {}",
            self.len, self.type_name, self.reason
        )
    }
}

impl std::error::Error for DecodeError {}

/// Turns stored bytes back into a key or a value, or says why it cannot.
///
/// Implement [`try_from_bytes`](Self::try_from_bytes). An implementation
/// written for persistent-kv implements [`from_bytes`](Self::from_bytes)
/// instead, and still compiles; it then cannot report bad bytes (whatever it
/// does on them, it does). Implement at least one of the two: each one's
/// default calls the other.
///
/// # Example
///
/// ```
/// use kekbit_kv::Deserializable;
/// assert_eq!(String::try_from_bytes(b"hi"), Ok("hi".to_string()));
/// assert!(String::try_from_bytes(&[0xff]).is_err());
/// assert!(bool::try_from_bytes(&[2]).is_err());
/// ```
pub trait Deserializable: Sized {
    /// The value these bytes hold, or why they hold none.
    fn try_from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self::from_bytes(bytes))
    }

    /// persistent-kv's infallible form. The store never calls it; it is
    /// here so that code calling it, or implementing it, compiles.
    ///
    /// # Panics
    ///
    /// On bytes that [`try_from_bytes`](Self::try_from_bytes) rejects.
    fn from_bytes(bytes: &[u8]) -> Self {
        match Self::try_from_bytes(bytes) {
            Ok(value) => value,
            Err(e) => panic!("{e}"),
        }
    }
}

impl Serializable for String {
    fn serialize(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl Serializable for str {
    fn serialize(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl Deserializable for String {
    fn try_from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(DecodeError::new::<String>(bytes.len(), e.to_string())),
        }
    }
}

impl Serializable for Vec<u8> {
    fn serialize(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl Serializable for [u8] {
    fn serialize(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl Deserializable for Vec<u8> {
    fn try_from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(bytes.to_vec())
    }
}

impl Serializable for bool {
    const IS_FIXED_SIZE: bool = true;
    fn serialize(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(if *self { &[1] } else { &[0] })
    }
    fn serialize_fixed_size(&self) -> Option<[u8; 8]> {
        Some([*self as u8, 0, 0, 0, 0, 0, 0, 0])
    }
}

impl Deserializable for bool {
    fn try_from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        match bytes {
            [0] => Ok(false),
            [1] => Ok(true),
            [_] => Err(DecodeError::new::<bool>(1, "the byte is neither 0 nor 1")),
            _ => Err(DecodeError::new::<bool>(
                bytes.len(),
                "needs exactly 1 byte",
            )),
        }
    }
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl Serializable for $t {
            const IS_FIXED_SIZE: bool = size_of::<$t>() <= 8;
            fn serialize(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.to_le_bytes().to_vec())
            }
            fn serialize_fixed_size(&self) -> Option<[u8; 8]> {
                let bytes = self.to_le_bytes();
                if bytes.len() > 8 {
                    return None;
                }
                let mut out = [0; 8];
                out[..bytes.len()].copy_from_slice(&bytes);
                Some(out)
            }
        }

        impl Deserializable for $t {
            fn try_from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
                match <[u8; size_of::<$t>()]>::try_from(bytes) {
                    Ok(array) => Ok(<$t>::from_le_bytes(array)),
                    Err(_) => Err(DecodeError::new::<$t>(
                        bytes.len(),
                        format!("needs exactly {} bytes", size_of::<$t>()),
                    )),
                }
            }
        }
    )*};
}

integer!(u8, i8, u16, i16, u32, i32, u64, i64, u128, i128);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_at_their_bounds() {
        macro_rules! check {
            ($($t:ty),*) => {$(
                for v in [<$t>::MIN, <$t>::MAX, 0 as $t, 1 as $t] {
                    let bytes = v.serialize();
                    assert_eq!(bytes.len(), size_of::<$t>());
                    assert_eq!(<$t>::try_from_bytes(&bytes), Ok(v));
                }
                assert!(<$t>::try_from_bytes(&[]).is_err());
                assert!(<$t>::try_from_bytes(&[0; 17]).is_err());
            )*};
        }
        check!(u8, i8, u16, i16, u32, i32, u64, i64, u128, i128);
    }

    #[test]
    fn integer_messages_name_the_width() {
        let e = u32::try_from_bytes(&[1, 2]).unwrap_err();
        assert_eq!(e.len, 2);
        assert_eq!(e.type_name, "u32");
        assert_eq!(e.reason, "needs exactly 4 bytes");
        assert!(
            u128::try_from_bytes(&[0; 8])
                .unwrap_err()
                .reason
                .contains("16 bytes")
        );
    }

    #[test]
    fn fixed_size_matches_persistent_kv() {
        assert_eq!(
            7u16.serialize_fixed_size(),
            persistent_kv::Serializable::serialize_fixed_size(&7u16)
        );
        assert_eq!(
            (-3i64).serialize_fixed_size(),
            persistent_kv::Serializable::serialize_fixed_size(&-3i64)
        );
        assert_eq!(u128::MAX.serialize_fixed_size(), None);
        const { assert!(<u64 as Serializable>::IS_FIXED_SIZE) };
        const { assert!(!<u128 as Serializable>::IS_FIXED_SIZE) };
        const { assert!(!<String as Serializable>::IS_FIXED_SIZE) };
    }

    #[test]
    fn strings_and_bytes() {
        assert_eq!(String::try_from_bytes(b""), Ok(String::new()));
        let e = String::try_from_bytes(&[b'a', 0xc3]).unwrap_err();
        assert!(e.to_string().contains("as alloc::string::String"), "{e}");
        assert_eq!(Vec::<u8>::try_from_bytes(&[]), Ok(vec![]));
        assert_eq!(&*b"xy"[..].serialize(), b"xy");
        assert_eq!(&*vec![1u8].serialize(), &[1]);
    }

    #[test]
    fn bools() {
        assert_eq!(bool::try_from_bytes(&true.serialize()), Ok(true));
        assert_eq!(bool::try_from_bytes(&false.serialize()), Ok(false));
        assert!(bool::try_from_bytes(&[]).is_err());
        assert!(bool::try_from_bytes(&[1, 0]).is_err());
        assert!(bool::try_from_bytes(&[7]).is_err());
    }

    struct Legacy(u8);
    impl Deserializable for Legacy {
        fn from_bytes(bytes: &[u8]) -> Self {
            Legacy(bytes.len() as u8)
        }
    }

    #[test]
    fn persistent_kv_style_implementations_still_work() {
        assert_eq!(Legacy::try_from_bytes(&[1, 2, 3]).map(|l| l.0), Ok(3));
    }

    #[test]
    #[should_panic(expected = "do not decode as bool")]
    fn from_bytes_panics_only_where_asked() {
        let _ = bool::from_bytes(&[9]);
    }
}
