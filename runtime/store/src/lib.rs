//! The store both the management API and the call router use.
//!
//! A backend implements [`Store`] and [`Tx`]: a handful of primitives over JSON documents
//! keyed by (kind, id), inside transactions. Everything above — the record types in
//! [`records`], the service rules the API enforces, the routing snapshot — is written against
//! those primitives only, so a PostgreSQL backend is one new file and no caller changes.
//!
//! Transactions are serializable: a writer holds the store until it commits or is dropped
//! (dropping rolls back). The API checks its rules inside the transaction that makes the
//! change, so two conflicting requests can never both pass.

pub mod numbering;
pub mod records;
pub mod sqlite;
pub mod time;

pub use records::Resource;
pub use sqlite::SqliteStore;

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store database {path}: {message}")]
    Open { path: String, message: String },
    #[error("store database: {0}")]
    Backend(String),
    #[error("store database schema version {found} is newer than this sma knows ({known}); upgrade sma or use another file")]
    NewerSchema { found: i64, known: i64 },
    #[error("stored {kind} `{id}` cannot be read: {message}")]
    Corrupt {
        kind: String,
        id: String,
        message: String,
    },
}

/// One transaction over the store's documents. Dropped without [`Tx::commit`], it rolls back.
pub trait Tx {
    /// The document of kind `kind` with id `id`.
    fn get_raw(&mut self, kind: &str, id: &str) -> Result<Option<String>, StoreError>;
    /// Inserts or replaces a document.
    fn put_raw(&mut self, kind: &str, id: &str, body: &str) -> Result<(), StoreError>;
    /// Removes a document; false when there was none.
    fn delete_raw(&mut self, kind: &str, id: &str) -> Result<bool, StoreError>;
    /// Every document of a kind, ordered by id.
    fn list_raw(&mut self, kind: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Makes the transaction's changes durable.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// A store of documents with transactions.
pub trait Store: Send + Sync {
    /// Starts a transaction that may write.
    fn begin(&self) -> Result<Box<dyn Tx + '_>, StoreError>;
    /// Where the data lives, for logs.
    fn describe(&self) -> String;
}

fn corrupt(kind: &str, id: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        kind: kind.into(),
        id: id.into(),
        message: e.to_string(),
    }
}

/// Typed access for every backend.
impl dyn Tx + '_ {
    pub fn get<T: Resource + DeserializeOwned>(
        &mut self,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.get_raw(T::KIND, id)? {
            Some(body) => serde_json::from_str(&body)
                .map(Some)
                .map_err(|e| corrupt(T::KIND, id, e)),
            None => Ok(None),
        }
    }

    pub fn put<T: Resource + Serialize>(&mut self, value: &T) -> Result<(), StoreError> {
        let body = serde_json::to_string(value).map_err(|e| corrupt(T::KIND, value.id(), e))?;
        self.put_raw(T::KIND, value.id(), &body)
    }

    pub fn delete<T: Resource>(&mut self, id: &str) -> Result<bool, StoreError> {
        self.delete_raw(T::KIND, id)
    }

    pub fn list<T: Resource + DeserializeOwned>(&mut self) -> Result<Vec<T>, StoreError> {
        self.list_raw(T::KIND)?
            .into_iter()
            .map(|(id, body)| serde_json::from_str(&body).map_err(|e| corrupt(T::KIND, &id, e)))
            .collect()
    }
}
