//! [`TokenHash`] as a SQL `Binary` value, for every backend that stores
//! `[u8]` as `Binary` — each compiled-in one and the `MultiConnection`'s
//! `MultiBackend`, which hands the bytes on to the backend in use.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Binary;

use super::TokenHash;

impl<DB: Backend> ToSql<Binary, DB> for TokenHash
where
    [u8]: ToSql<Binary, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        <[u8] as ToSql<Binary, DB>>::to_sql(self.0.as_slice(), out)
    }
}

/// A stored value that is not 32 bytes long is a deserialization error.
impl<DB: Backend> FromSql<Binary, DB> for TokenHash
where
    Vec<u8>: FromSql<Binary, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<TokenHash> {
        let bytes = <Vec<u8> as FromSql<Binary, DB>>::from_sql(bytes)?;
        let len = bytes.len();
        <[u8; 32]>::try_from(bytes)
            .map(TokenHash)
            .map_err(|_| format!("stored hash has {len} bytes, not 32").into())
    }
}

#[cfg(all(test, feature = "sqlite"))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use diesel::connection::Connection;
    use diesel::dsl::sql;
    use diesel::prelude::*;
    use diesel::result::Error;
    use diesel::sql_types::Binary;

    use super::super::conn::DbConnection;
    use super::TokenHash;

    fn read(conn: &mut DbConnection, literal: &str) -> QueryResult<TokenHash> {
        diesel::select(sql::<Binary>(literal)).get_result(conn)
    }

    #[test]
    fn only_32_bytes_read_as_a_hash() {
        let mut conn =
            DbConnection::Sqlite(diesel::SqliteConnection::establish(":memory:").unwrap());
        let hex = "ab".repeat(32);
        assert_eq!(
            read(&mut conn, &format!("X'{hex}'")).unwrap(),
            TokenHash([0xab; 32])
        );
        for wrong in ["X''".to_string(), "X'0102'".into(), format!("X'{hex}00'")] {
            assert!(
                matches!(read(&mut conn, &wrong), Err(Error::DeserializationError(_))),
                "{wrong}"
            );
        }
        let hash = TokenHash::of("secret");
        let back: TokenHash = diesel::select(hash.into_sql::<Binary>())
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(back, hash);
    }
}
