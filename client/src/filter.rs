//! Filters of the listing and ranking calls. Within a filter the lists
//! combine with AND; an empty list does not filter; a list matches any of
//! its values. The server accepts at most 1,000 values per list.

/// Filter over datablobs or model templates.
///
/// ```
/// use mlmeta_client::GroupedFilter;
///
/// let all = GroupedFilter::default();
/// assert!(all.names.is_empty());
/// let mnist = GroupedFilter::default().group_names(["mnist"]);
/// assert_eq!(mnist.group_names, ["mnist"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupedFilter {
    /// Match any of these names.
    pub names: Vec<String>,
    /// Match any of these group names.
    pub group_names: Vec<String>,
}

impl GroupedFilter {
    /// This filter with `names` as its names.
    #[must_use]
    pub fn names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.names = strings(names);
        self
    }

    /// This filter with `group_names` as its group names.
    #[must_use]
    pub fn group_names<S: Into<String>>(mut self, group_names: impl IntoIterator<Item = S>) -> Self {
        self.group_names = strings(group_names);
        self
    }
}

/// Filter over models, by their own names or those of their datablob and
/// template (and their groups).
///
/// ```
/// use mlmeta_client::ModelFilter;
///
/// let filter = ModelFilter::default()
///     .datablob_group_names(["mnist"])
///     .model_template_names(["resnet18", "resnet50"]);
/// assert_eq!(filter.model_template_names.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelFilter {
    /// Match any of these model names.
    pub names: Vec<String>,
    /// Match models of any of these datablobs.
    pub datablob_names: Vec<String>,
    /// Match models of datablobs in any of these groups.
    pub datablob_group_names: Vec<String>,
    /// Match models of any of these templates.
    pub model_template_names: Vec<String>,
    /// Match models of templates in any of these groups.
    pub model_template_group_names: Vec<String>,
    /// Match models having every one of these tags (key = value).
    pub tags: std::collections::BTreeMap<String, String>,
    /// Match models whose run is in any of these statuses.
    pub statuses: Vec<crate::RunStatus>,
}

impl ModelFilter {
    /// This filter also requiring tag `key` with value `value` (several
    /// tags combine with AND).
    #[must_use]
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// This filter also requiring each of `tags` (key, value).
    #[must_use]
    pub fn tags<K: Into<String>, V: Into<String>>(mut self, tags: impl IntoIterator<Item = (K, V)>) -> Self {
        self.tags
            .extend(tags.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// This filter with `statuses` as its run statuses.
    #[must_use]
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = crate::RunStatus>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// This filter with `names` as its model names.
    #[must_use]
    pub fn names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.names = strings(names);
        self
    }

    /// This filter with `names` as its datablob names.
    #[must_use]
    pub fn datablob_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.datablob_names = strings(names);
        self
    }

    /// This filter with `names` as its datablob group names.
    #[must_use]
    pub fn datablob_group_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.datablob_group_names = strings(names);
        self
    }

    /// This filter with `names` as its model template names.
    #[must_use]
    pub fn model_template_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.model_template_names = strings(names);
        self
    }

    /// This filter with `names` as its model template group names.
    #[must_use]
    pub fn model_template_group_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.model_template_group_names = strings(names);
        self
    }
}

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
