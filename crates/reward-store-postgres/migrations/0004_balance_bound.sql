-- A balance never passes 2^53 - 1, the largest whole number a JSON receiver that reads numbers as
-- doubles (JavaScript) reads exactly. Balances are added to in the database
-- (`balance = users.balance + n`), so the bound is the table's: a statement that would pass it
-- fails, and the store answers `balance_overflow`. NOT VALID: rows from before the bound are kept
-- as they are (checking them could only fail the migration); every new row version is checked.
ALTER TABLE users ADD CONSTRAINT users_balance_within_exact_doubles
    CHECK (balance <= 9007199254740991) NOT VALID;
