//! The shared scenarios (`reward_store::testing`) on a SQLite file.

use reward_store_sqlite::SqliteStore;

fn open() -> (tempfile::TempDir, SqliteStore) {
    let folder = tempfile::tempdir().expect("temporary folder");
    let store = SqliteStore::open(&folder.path().join("reward.db")).expect("open");
    (folder, store)
}

#[tokio::test]
async fn a_refill_due_since_the_last_claim_is_announced() {
    let (_folder, store) = open();
    reward_store::testing::a_refill_due_since_the_last_claim_is_announced(&store).await;
}

#[tokio::test]
async fn a_rotation_naming_the_current_secret_happens_once() {
    let (_folder, store) = open();
    reward_store::testing::a_rotation_naming_the_current_secret_happens_once(&store, &store).await;
}
