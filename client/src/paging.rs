//! Following page tokens: a listing as a stream of its items, fetching one
//! page at a time (so memory holds one page), or collected whole.

use std::future::Future;

use futures::{Stream, StreamExt, TryStreamExt, stream};

use crate::error::{Error, Result};

/// One page of a listing.
pub(crate) struct Page<T> {
    /// Its items, in order.
    pub items: Vec<T>,
    /// Token of the next page; empty on the last page.
    pub next_token: String,
}

/// Every item of a listing, in order: `fetch(token)` returns the page at
/// `token` (the empty token is the first page). The next page is fetched
/// only when the items of the current one have been taken.
pub(crate) fn items<T, F, Fut>(fetch: F) -> impl Stream<Item = Result<T>> + Send + Unpin + use<T, F, Fut>
where
    T: Send + 'static,
    F: FnMut(String) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Page<T>>> + Send + 'static,
{
    stream::try_unfold((fetch, Some(String::new())), |(mut fetch, token)| async move {
        let Some(token) = token else {
            return Ok(None);
        };
        let page = fetch(token.clone()).await?;
        let next = if page.next_token.is_empty() {
            None
        } else if page.next_token == token {
            return Err(Error::InvalidResponse(format!(
                "the server returned the page token {token:?} for the page after it"
            )));
        } else {
            Some(page.next_token)
        };
        Ok(Some((page.items, (fetch, next))))
    })
    .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
    .try_flatten()
    // Boxed so that callers can poll it without pinning it first.
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A listing of `0..total` in pages of `size`, counting fetches.
    fn numbers(total: u32, size: u32, fetches: Arc<AtomicUsize>) -> impl Stream<Item = Result<u32>> {
        items(move |token: String| {
            fetches.fetch_add(1, Ordering::SeqCst);
            async move {
                let start: u32 = if token.is_empty() {
                    0
                } else {
                    token.parse().unwrap()
                };
                let end = (start + size).min(total);
                Ok(Page {
                    items: (start..end).collect(),
                    next_token: if end < total {
                        end.to_string()
                    } else {
                        String::new()
                    },
                })
            }
        })
    }

    #[tokio::test]
    async fn follows_tokens_to_the_end() {
        let fetches = Arc::new(AtomicUsize::new(0));
        let all: Vec<u32> = numbers(25, 10, fetches.clone()).try_collect().await.unwrap();
        assert_eq!(all, (0..25).collect::<Vec<_>>());
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
        let none: Vec<u32> = numbers(0, 10, Arc::default()).try_collect().await.unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn fetches_lazily() {
        let fetches = Arc::new(AtomicUsize::new(0));
        let first: Vec<_> = numbers(1_000, 10, fetches.clone()).take(15).collect().await;
        assert_eq!(first.len(), 15);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_repeated_token_is_an_error_not_a_loop() {
        let stream = items(|_token: String| async {
            Ok(Page {
                items: vec![1],
                next_token: "same".to_owned(),
            })
        });
        let result: Result<Vec<i32>> = stream.try_collect().await;
        assert!(matches!(result, Err(Error::InvalidResponse(m)) if m.contains("same")));
    }

    #[tokio::test]
    async fn errors_end_the_stream() {
        let stream = items(|token: String| async move {
            if token.is_empty() {
                Ok(Page {
                    items: vec![1, 2],
                    next_token: "next".to_owned(),
                })
            } else {
                Err(Error::Unavailable {
                    message: "gone".into(),
                })
            }
        });
        let got: Vec<Result<i32>> = stream.collect().await;
        assert_eq!(got.len(), 3);
        assert!(matches!(got[2], Err(Error::Unavailable { .. })));
    }
}
