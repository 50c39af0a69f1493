//! Filters of the listing and ranking calls. Within a filter the lists
//! combine with AND; an empty list does not filter; a list matches any of
//! its values. The server accepts at most 1,000 values per list.
//!
//! [`ModelFilter`] and [`GroupedFilter`] are the domain filter types shared
//! with the server (`mlmeta_proto::filter`, where their builder methods
//! are documented); [`EpochFilter`] is the client's own.

pub use mlmeta_proto::filter::{Deletion, GroupedFilter, ModelFilter};

/// Filter over epochs: of some models, within a range of epoch numbers.
///
/// ```
/// use mlmeta_client::EpochFilter;
///
/// let filter = EpochFilter::models(["run-1"]).min_epoch_num(10).max_epoch_num(19);
/// assert_eq!(filter.min_epoch_num, Some(10));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochFilter {
    /// Epochs of these models; of all models when empty.
    pub model_names: Vec<String>,
    /// Only epochs with `epoch_num >= min_epoch_num`.
    pub min_epoch_num: Option<i64>,
    /// Only epochs with `epoch_num <= max_epoch_num`.
    pub max_epoch_num: Option<i64>,
}

impl EpochFilter {
    /// Every epoch of the given models.
    pub fn models<S: Into<String>>(model_names: impl IntoIterator<Item = S>) -> Self {
        Self {
            model_names: strings(model_names),
            ..Self::default()
        }
    }

    /// This filter keeping only epochs numbered `>= min`.
    #[must_use]
    pub fn min_epoch_num(mut self, min: i64) -> Self {
        self.min_epoch_num = Some(min);
        self
    }

    /// This filter keeping only epochs numbered `<= max`.
    #[must_use]
    pub fn max_epoch_num(mut self, max: i64) -> Self {
        self.max_epoch_num = Some(max);
        self
    }
}

fn strings<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Vec<String> {
    values.into_iter().map(Into::into).collect()
}
