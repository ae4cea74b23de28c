//! Filters, sorting and paging over dialogs and messages, as the chat API's operators express
//! them (`field[op]=value`). Faces parse into these; stores translate them into their own queries.

/// A comparison operator of the chat API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
    Ne,
    In,
    Nin,
    All,
    /// Contains a substring.
    Ctn,
}

impl Op {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "ne" => Self::Ne,
            "in" => Self::In,
            "nin" => Self::Nin,
            "all" => Self::All,
            "ctn" => Self::Ctn,
            "eq" => Self::Eq,
            _ => return None,
        })
    }

    /// Operators that take a list of values.
    pub fn is_list(self) -> bool {
        matches!(self, Self::In | Self::Nin | Self::All)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Int(i64),
    Text(String),
}

/// The fields the chat API lets clients filter and sort on.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Id,
    DialogType,
    Name,
    LastMessageDateSent,
    /// Unix seconds, stored in milliseconds.
    CreatedAt,
    UpdatedAt,
    Body,
    DateSent,
    SenderId,
    RecipientId,
    AttachmentType,
    ChatDialogId,
    /// A custom dialog parameter, `data[<name>]`; names are `[A-Za-z0-9_]`.
    Custom(String),
    /// When the server stored a message, in milliseconds: the order messages arrived in (no
    /// REST filter offers it; ids and `date_sent` carry whole seconds only).
    StoredAt,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: Field,
    pub op: Op,
    pub values: Vec<Scalar>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub field: Field,
    pub desc: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Query {
    pub conditions: Vec<Condition>,
    pub sort: Option<Sort>,
    pub limit: u32,
    pub skip: u32,
}
