//! The metadata key/value table of a GGUF file, with typed accessors.

use std::collections::HashMap;

use super::error::{GgufError, Result};
use super::value::{Array, MetaElement, MetaScalar, Value};

/// Metadata in file order, with lookup by key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

impl Metadata {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a key; a key already present is an error.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Result<()> {
        let key = key.into();
        if self.index.contains_key(&key) {
            return Err(GgufError::DuplicateKey(key));
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value.into()));
        Ok(())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys and values in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The value of `key`, which must be present.
    pub fn require(&self, key: &str) -> Result<&Value> {
        self.get(key)
            .ok_or_else(|| GgufError::MissingKey(key.to_string()))
    }

    /// The scalar at `key`, which must exist and have exactly type `T`.
    pub fn get_scalar<T: MetaScalar>(&self, key: &str) -> Result<&T> {
        let value = self.require(key)?;
        T::from_value(value).ok_or_else(|| wrong_type(key, T::TYPE.name(), value))
    }

    /// The scalar at `key` if present; an error only when present with another type.
    pub fn get_opt_scalar<T: MetaScalar>(&self, key: &str) -> Result<Option<&T>> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => T::from_value(value)
                .map(Some)
                .ok_or_else(|| wrong_type(key, T::TYPE.name(), value)),
        }
    }

    /// The array at `key`, of any element type.
    pub fn get_array(&self, key: &str) -> Result<&Array> {
        match self.require(key)? {
            Value::Array(a) => Ok(a),
            other => Err(wrong_type(key, "array", other)),
        }
    }

    /// The elements of the array at `key`, which must have element type `T`.
    pub fn get_array_of<T: MetaElement>(&self, key: &str) -> Result<&[T]> {
        let value = self.require(key)?;
        match value {
            Value::Array(a) => T::from_array(a),
            _ => None,
        }
        .ok_or_else(|| wrong_type(key, &format!("array of {}", T::TYPE.name()), value))
    }

    /// An unsigned integer stored as any integer type (converters disagree on u32/i32/u64).
    pub fn get_uint(&self, key: &str) -> Result<u64> {
        let value = self.require(key)?;
        value
            .as_u64_lossless()
            .ok_or_else(|| wrong_type(key, "a non-negative integer", value))
    }

    /// Like [`Metadata::get_uint`] but `None` when the key is absent.
    pub fn get_opt_uint(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.get_uint(key).map(Some),
        }
    }

    /// `u8` at `key`.
    pub fn get_u8(&self, key: &str) -> Result<u8> {
        self.get_scalar(key).copied()
    }
    /// `i8` at `key`.
    pub fn get_i8(&self, key: &str) -> Result<i8> {
        self.get_scalar(key).copied()
    }
    /// `u16` at `key`.
    pub fn get_u16(&self, key: &str) -> Result<u16> {
        self.get_scalar(key).copied()
    }
    /// `i16` at `key`.
    pub fn get_i16(&self, key: &str) -> Result<i16> {
        self.get_scalar(key).copied()
    }
    /// `u32` at `key`.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.get_scalar(key).copied()
    }
    /// `i32` at `key`.
    pub fn get_i32(&self, key: &str) -> Result<i32> {
        self.get_scalar(key).copied()
    }
    /// `u64` at `key`.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.get_scalar(key).copied()
    }
    /// `i64` at `key`.
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        self.get_scalar(key).copied()
    }
    /// `f32` at `key`.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.get_scalar(key).copied()
    }
    /// `f64` at `key`.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        self.get_scalar(key).copied()
    }
    /// `bool` at `key`.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        self.get_scalar(key).copied()
    }
    /// String at `key`.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.get_scalar::<String>(key).map(String::as_str)
    }
}

fn wrong_type(key: &str, expected: &str, found: &Value) -> GgufError {
    GgufError::WrongType {
        key: key.to_string(),
        expected: expected.to_string(),
        found: found.type_description(),
    }
}
