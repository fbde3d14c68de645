//! Rows moved from one backend to another as they are (`reward copy`), for a move from SQLite to
//! PostgreSQL when one machine is no longer enough.
//!
//! - [`tables`]: every table that is copied and its columns, in the one list both sides read: the
//!   SQLite export selects these columns and the PostgreSQL import inserts them. A migration that
//!   adds a column to both schemas adds it here too.
//! - [`reseal`]: what a copied row needs besides its values: secrets and other sealed text opened
//!   with the source's key and sealed again with the target's, and claims of the stopped source
//!   cleared.
//!
//! The two schemas hold the same tables and columns (see each backend's migrations); they differ
//! only in how a value is spelled (a flag is 0/1 in SQLite, a BOOLEAN in PostgreSQL), which
//! [`Kind`] tells each side.

pub mod reseal;
pub mod tables;

pub use reseal::{reseal_row, Keys, ResealError};
pub use tables::{Column, Kind, Table, Treatment, TABLES};

/// One value of a copied row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    Integer(i64),
    Text(String),
    Flag(bool),
}

impl Cell {
    /// The text, when the cell holds text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Cell::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// One row of a [`Table`]: a cell per column, in the table's column order.
pub type Row = Vec<Cell>;
