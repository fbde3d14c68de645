-- Dashboard sign-ins. Only a SHA-256 hash of a session's token is stored, so a copy of the
-- database cannot be used to sign in. A session ends at expires_at, on sign out, or when the API
-- key it was opened with is revoked.
CREATE TABLE sessions (
    account_id  TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    api_key_id  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, token_hash)
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- The dashboard's success rate reads an account's attempts of the last 24 hours.
CREATE INDEX attempts_by_time ON attempts (account_id, started_at);
