//! Identifier newtypes, validated when they are built so nothing downstream re-checks them.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::Error;

macro_rules! numeric_id {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A positive ", $what, " id.")]
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            pub fn new(v: i64) -> Result<Self, Error> {
                if v > 0 {
                    Ok(Self(v))
                } else {
                    Err(Error::bad_request(concat!("invalid ", $what, " id")))
                }
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| Error::bad_request(concat!("invalid ", $what, " id")))
                    .and_then(Self::new)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

numeric_id!(AppId, "application");
numeric_id!(UserId, "user");

/// A MongoDB-style ObjectId: 4 bytes of seconds, 5 random bytes per process, a 3-byte counter.
/// Time-ordered, so sorting by id sorts by creation; ConnectyCube clients expect 24 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

impl ObjectId {
    pub fn generate() -> Self {
        static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
        static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
        let process = PROCESS.get_or_init(rand::random);
        let counter = COUNTER
            .get_or_init(|| AtomicU32::new(rand::random::<u32>() & 0xFF_FFFF))
            .fetch_add(1, Ordering::Relaxed);
        let secs = (crate::clock::now_millis() / 1000) as u32;
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&secs.to_be_bytes());
        b[4..9].copy_from_slice(process);
        b[9..].copy_from_slice(&counter.to_be_bytes()[1..]);
        Self(b)
    }

    /// An id made elsewhere (e.g. derived from what it names); not time-ordered.
    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }

    pub fn timestamp_secs(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

impl FromStr for ObjectId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut b = [0u8; 12];
        if s.len() != 24 || hex::decode_to_slice(s, &mut b).is_err() {
            return Err(Error::bad_request(format!("invalid id: {s:.40}")));
        }
        Ok(Self(b))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An [`ObjectId`] that names one kind of thing, so a dialog id cannot be passed where a message id
/// is expected.
macro_rules! object_id_kind {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The id of a ", $what, ".")]
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(ObjectId);

        impl $name {
            pub fn generate() -> Self {
                Self(ObjectId::generate())
            }

            pub fn object_id(self) -> ObjectId {
                self.0
            }
        }

        impl From<ObjectId> for $name {
            fn from(id: ObjectId) -> Self {
                Self(id)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                s.parse().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

object_id_kind!(DialogId, "dialog");
object_id_kind!(MessageId, "message");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_round_trip_and_order() {
        let a = ObjectId::generate();
        let b = ObjectId::generate();
        assert!(a < b);
        assert_eq!(a.to_string().len(), 24);
        assert_eq!(a.to_string().parse::<ObjectId>().unwrap(), a);
    }

    #[test]
    fn bad_ids_are_rejected() {
        assert!("xyz".parse::<ObjectId>().is_err());
        assert!("zz0000000000000000000000".parse::<ObjectId>().is_err());
        assert!("0".parse::<UserId>().is_err());
        assert!("-4".parse::<AppId>().is_err());
        assert_eq!("17".parse::<UserId>().unwrap().get(), 17);
    }
}
