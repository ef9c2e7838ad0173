//! The policy snapshots the analysis compares a change with: each inline policy, trust
//! policy, permissions boundary and managed policy default version as last seen, per account,
//! kept current by the changes themselves and seeded from IAM (`iamwatchd analysis seed`).
//! A write never replaces what a later event wrote (`as_of` only moves forward).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{millis, Result, Store, StoreError};
use crate::analysis::SnapshotKey;

/// One change to the snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotWrite {
    /// Which snapshot.
    pub key: SnapshotKey,
    /// The new document (JSON text, an ARN, a version id); `None` deletes it.
    pub document: Option<String>,
    /// As of when: the event's time, or when the seed read it.
    pub as_of: DateTime<Utc>,
    /// `event` or `seed`.
    pub source: &'static str,
}

impl Store {
    /// The snapshot under `key`, when there is one.
    pub(crate) fn snapshot(&self, key: &SnapshotKey) -> Result<Option<String>> {
        self.conn
            .prepare_cached(
                "SELECT document FROM policy_snapshot \
                 WHERE account = ?1 AND kind = ?2 AND entity = ?3 AND name = ?4",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![key.account, key.kind, key.entity, key.name], |r| {
                    r.get(0)
                })
                .optional()
            })
            .map_err(self.err("reading a policy snapshot"))
    }

    /// Applies `writes` in one transaction, each only if nothing later was written under its
    /// key; `seeded` records a seed of that account (complete or not) at `now`.
    pub(crate) fn write_snapshots(
        &mut self,
        writes: &[SnapshotWrite],
        seeded: Option<(&str, bool)>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let path = self.path.clone();
        let err = move |source| StoreError::Sqlite {
            path: path.clone(),
            op: "writing policy snapshots",
            source,
        };
        let tx = self.write()?;
        for write in writes {
            let k = &write.key;
            match &write.document {
                Some(document) => tx.execute(
                    "INSERT INTO policy_snapshot (account, kind, entity, name, document, as_of, source) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (account, kind, entity, name) DO UPDATE SET \
                       document = excluded.document, as_of = excluded.as_of, source = excluded.source \
                     WHERE excluded.as_of >= policy_snapshot.as_of",
                    params![k.account, k.kind, k.entity, k.name, document, millis(write.as_of), write.source],
                ),
                None => tx.execute(
                    "DELETE FROM policy_snapshot \
                     WHERE account = ?1 AND kind = ?2 AND entity = ?3 AND name = ?4 AND as_of <= ?5",
                    params![k.account, k.kind, k.entity, k.name, millis(write.as_of)],
                ),
            }
            .map_err(&err)?;
        }
        if let Some((account, complete)) = seeded {
            tx.execute(
                "INSERT INTO policy_seed (account, seeded_at, complete) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (account) DO UPDATE SET seeded_at = excluded.seeded_at, \
                   complete = excluded.complete",
                params![account, millis(now), complete],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)
    }

    /// Whether any account was seeded (the daemon seeds on its first start only).
    pub(crate) fn any_seed(&self) -> Result<bool> {
        self.conn
            .query_row("SELECT EXISTS (SELECT 1 FROM policy_seed)", [], |r| {
                r.get(0)
            })
            .map_err(self.err("reading the seed record"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn key(name: &str) -> SnapshotKey {
        SnapshotKey {
            account: "111122223333".into(),
            kind: "role-policy",
            entity: "app".into(),
            name: name.into(),
        }
    }

    fn write(name: &str, document: Option<&str>, at: i64) -> SnapshotWrite {
        SnapshotWrite {
            key: key(name),
            document: document.map(str::to_owned),
            as_of: t(at),
            source: "event",
        }
    }

    #[test]
    fn snapshots_only_move_forward_and_deletes_remove_them() {
        let (_dir, mut store) = open();
        assert_eq!(store.snapshot(&key("p")).unwrap(), None);
        assert!(!store.any_seed().unwrap());
        store
            .write_snapshots(
                &[write("p", Some("v2"), 20)],
                Some(("111122223333", true)),
                t(0),
            )
            .unwrap();
        store
            .write_snapshots(&[write("p", Some("v1"), 10)], None, t(0))
            .unwrap();
        assert_eq!(
            store.snapshot(&key("p")).unwrap().as_deref(),
            Some("v2"),
            "an older write loses"
        );
        assert!(store.any_seed().unwrap());
        store
            .write_snapshots(&[write("p", None, 15)], None, t(0))
            .unwrap();
        assert!(
            store.snapshot(&key("p")).unwrap().is_some(),
            "an older delete loses"
        );
        store
            .write_snapshots(&[write("p", None, 30)], None, t(0))
            .unwrap();
        assert_eq!(store.snapshot(&key("p")).unwrap(), None);
    }
}
