//! Long maintenance work (purges, clearing old bodies) as a walk of short chunks, each its own
//! transaction that says where the next starts: writers never wait behind more than one chunk,
//! and nothing holds a day's rows in memory at once.

use std::future::Future;

use crate::StoreResult;

/// Runs `chunk` from `start`, then from wherever each chunk says the next starts, until one says
/// none does; returns the sum of the rows the chunks counted.
pub async fn walk<Cursor, Chunk, Done>(start: Cursor, mut chunk: Chunk) -> StoreResult<u64>
where
    Chunk: FnMut(Cursor) -> Done,
    Done: Future<Output = StoreResult<(u64, Option<Cursor>)>>,
{
    let mut total = 0;
    let mut next = Some(start);
    while let Some(from) = next {
        let (count, after) = chunk(from).await?;
        total += count;
        next = after;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    #[tokio::test]
    async fn a_walk_sums_its_chunks_until_one_says_it_is_the_last() {
        let mut seen = Vec::new();
        let total = walk(0, |from: u32| {
            seen.push(from);
            async move { Ok((10, (from < 20).then_some(from + 10))) }
        })
        .await
        .expect("walk");
        assert_eq!(seen, vec![0, 10, 20]);
        assert_eq!(total, 30);
    }

    #[tokio::test]
    async fn a_failing_chunk_ends_the_walk_with_its_error() {
        let mut calls = 0;
        let walked = walk(0, |from: u32| {
            calls += 1;
            async move {
                if from == 1 {
                    Err(StoreError::Internal("disk".into()))
                } else {
                    Ok((1, Some(from + 1)))
                }
            }
        })
        .await;
        assert!(walked.is_err());
        assert_eq!(calls, 2);
    }
}
