//! The listing calls of [`Client`]: everything that matches, collected
//! whole or streamed one page at a time.

use std::future::Future;

use futures::{Stream, TryStreamExt};
use mlmeta_proto as pb;
use tonic::{Response, Status};

use crate::client::{Client, Grpc};
use crate::convert;
use crate::error::Result;
use crate::filter::{EpochFilter, GroupedFilter, ModelFilter};
use crate::paging::{self, Page};
use crate::types::{DataBlob, Direction, Epoch, LeaderboardRow, Model, ModelTemplate, ModelView};

impl Client {
    /// Every datablob matching `filter`, ordered by name (all pages).
    pub async fn list_datablobs(&self, filter: &GroupedFilter) -> Result<Vec<DataBlob>> {
        self.list_datablobs_stream(filter).try_collect().await
    }

    /// Every datablob matching `filter`, ordered by name, as a stream that
    /// fetches one page at a time.
    pub fn list_datablobs_stream(
        &self,
        filter: &GroupedFilter,
    ) -> impl Stream<Item = Result<DataBlob>> + Send + Unpin + 'static + use<> {
        let request = pb::ListDataBlobsRequest {
            filter: Some(convert::grouped_filter(filter)),
            page_size: self.page_size(),
            page_token: String::new(),
            project: self.project().to_owned(),
        };
        self.paged(
            request,
            |r, token| r.page_token = token,
            |mut grpc, r| async move { grpc.list_data_blobs(r).await },
            |page| {
                Ok(Page {
                    items: convert::all(page.datablobs, |b| convert::datablob(Some(b)))?,
                    next_token: page.next_page_token,
                })
            },
        )
    }

    /// Every model template matching `filter`, ordered by name (all pages).
    pub async fn list_model_templates(&self, filter: &GroupedFilter) -> Result<Vec<ModelTemplate>> {
        self.list_model_templates_stream(filter).try_collect().await
    }

    /// Every model template matching `filter`, ordered by name, as a
    /// stream that fetches one page at a time.
    pub fn list_model_templates_stream(
        &self,
        filter: &GroupedFilter,
    ) -> impl Stream<Item = Result<ModelTemplate>> + Send + Unpin + 'static + use<> {
        let request = pb::ListModelTemplatesRequest {
            filter: Some(convert::grouped_filter(filter)),
            page_size: self.page_size(),
            page_token: String::new(),
            project: self.project().to_owned(),
        };
        self.paged(
            request,
            |r, token| r.page_token = token,
            |mut grpc, r| async move { grpc.list_model_templates(r).await },
            |page| {
                Ok(Page {
                    items: convert::all(page.model_templates, |t| convert::template(Some(t)))?,
                    next_token: page.next_page_token,
                })
            },
        )
    }

    /// Every model matching `filter`, ordered by name (all pages).
    pub async fn list_models(&self, filter: &ModelFilter) -> Result<Vec<Model>> {
        self.list_models_stream(filter).try_collect().await
    }

    /// Every model matching `filter`, ordered by name, as a stream that
    /// fetches one page at a time.
    pub fn list_models_stream(
        &self,
        filter: &ModelFilter,
    ) -> impl Stream<Item = Result<Model>> + Send + Unpin + 'static + use<> {
        self.list_models_with_stream(filter, &ModelView::default())
    }

    /// Every model matching `filter` in the order of `view`, with its
    /// summary columns (all pages).
    ///
    /// ```no_run
    /// use mlmeta_client::{Client, ModelFilter, ModelView};
    ///
    /// # async fn example(client: Client) -> mlmeta_client::Result<()> {
    /// let view = ModelView::order_by("max(val_accuracy) desc").columns(["max(val_accuracy)"]);
    /// for model in client.list_models_with(&ModelFilter::default(), &view).await? {
    ///     println!("{} {:?}", model.name, model.columns[0]);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list_models_with(&self, filter: &ModelFilter, view: &ModelView) -> Result<Vec<Model>> {
        self.list_models_with_stream(filter, view).try_collect().await
    }

    /// [`Client::list_models_with`] as a stream that fetches one page at
    /// a time.
    pub fn list_models_with_stream(
        &self,
        filter: &ModelFilter,
        view: &ModelView,
    ) -> impl Stream<Item = Result<Model>> + Send + Unpin + 'static + use<> {
        let request = pb::ListModelsRequest {
            filter: Some(convert::model_filter(filter)),
            page_size: self.page_size(),
            page_token: String::new(),
            project: self.project().to_owned(),
            order_by: view.order_by.clone(),
            columns: view.columns.clone(),
        };
        self.paged(
            request,
            |r, token| r.page_token = token,
            |mut grpc, r| async move { grpc.list_models(r).await },
            |page| {
                Ok(Page {
                    items: convert::all(page.models, |m| convert::model(Some(m)))?,
                    next_token: page.next_page_token,
                })
            },
        )
    }

    /// Every epoch matching `filter`, ordered by model name then epoch
    /// number (all pages). For very many epochs prefer
    /// [`Client::list_epochs_stream`].
    pub async fn list_epochs(&self, filter: &EpochFilter) -> Result<Vec<Epoch>> {
        self.list_epochs_stream(filter).try_collect().await
    }

    /// Every epoch matching `filter`, ordered by model name then epoch
    /// number, as a stream that fetches one page at a time (memory holds
    /// one page). Like every listing stream, it is `Send`, `Unpin` and
    /// `'static`: it can be polled directly and moved to other tasks.
    ///
    /// ```no_run
    /// use futures::TryStreamExt;
    /// use mlmeta_client::{Client, EpochFilter};
    ///
    /// # async fn example(client: Client) -> mlmeta_client::Result<()> {
    /// let mut epochs = client.list_epochs_stream(&EpochFilter::models(["run-1"]));
    /// let mut best_loss = f64::INFINITY;
    /// while let Some(epoch) = epochs.try_next().await? {
    ///     best_loss = best_loss.min(epoch.metrics.get("loss").copied().unwrap_or(f64::INFINITY));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn list_epochs_stream(
        &self,
        filter: &EpochFilter,
    ) -> impl Stream<Item = Result<Epoch>> + Send + Unpin + 'static + use<> {
        self.paged(
            convert::epoch_request(filter, self.page_size(), self.project()),
            |r, token| r.page_token = token,
            |mut grpc, r| async move { grpc.list_epochs(r).await },
            |page| {
                Ok(Page {
                    items: convert::all(page.epochs, convert::epoch)?,
                    next_token: page.next_page_token,
                })
            },
        )
    }

    /// Every model matching `filter` that has `metric`, with its best value
    /// and epoch, best first (all pages).
    pub async fn leaderboard(
        &self,
        metric: &str,
        direction: Direction,
        filter: &ModelFilter,
    ) -> Result<Vec<LeaderboardRow>> {
        self.leaderboard_stream(metric, direction, filter)
            .try_collect()
            .await
    }

    /// [`Client::leaderboard`] as a stream that fetches one page at a time.
    pub fn leaderboard_stream(
        &self,
        metric: &str,
        direction: Direction,
        filter: &ModelFilter,
    ) -> impl Stream<Item = Result<LeaderboardRow>> + Send + Unpin + 'static + use<> {
        self.leaderboard_with_stream(metric, direction, filter, &[])
    }

    /// [`Client::leaderboard`] with summary `columns` (`last(loss)`,
    /// `epochs`, ...) in each row's model's
    /// [`Model::columns`](crate::Model::columns) (all pages).
    pub async fn leaderboard_with(
        &self,
        metric: &str,
        direction: Direction,
        filter: &ModelFilter,
        columns: &[String],
    ) -> Result<Vec<LeaderboardRow>> {
        self.leaderboard_with_stream(metric, direction, filter, columns)
            .try_collect()
            .await
    }

    /// [`Client::leaderboard_with`] as a stream that fetches one page at a
    /// time.
    pub fn leaderboard_with_stream(
        &self,
        metric: &str,
        direction: Direction,
        filter: &ModelFilter,
        columns: &[String],
    ) -> impl Stream<Item = Result<LeaderboardRow>> + Send + Unpin + 'static + use<> {
        let request = pb::GetLeaderboardRequest {
            metric_name: metric.to_owned(),
            direction: convert::direction(direction),
            filter: Some(convert::model_filter(filter)),
            page_size: self.page_size(),
            page_token: String::new(),
            project: self.project().to_owned(),
            columns: columns.to_vec(),
        };
        self.paged(
            request,
            |r, token| r.page_token = token,
            |mut grpc, r| async move { grpc.get_leaderboard(r).await },
            |page| {
                Ok(Page {
                    items: convert::all(page.rows, convert::leaderboard_row)?,
                    next_token: page.next_page_token,
                })
            },
        )
    }

    /// The items of every page of `request`: `set_token` puts a page token
    /// in it, `call` makes the call, `page` reads the answer.
    fn paged<Req, Resp, T, C, Fut>(
        &self,
        request: Req,
        set_token: fn(&mut Req, String),
        call: C,
        page: fn(Resp) -> Result<Page<T>>,
    ) -> impl Stream<Item = Result<T>> + Send + Unpin + 'static + use<Req, Resp, T, C, Fut>
    where
        Req: Clone + Send + Sync + 'static,
        Resp: Send + 'static,
        T: Send + 'static,
        C: Fn(Grpc, tonic::Request<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Response<Resp>, Status>> + Send + 'static,
    {
        let client = self.clone();
        paging::items(move |token| {
            let client = client.clone();
            let call = call.clone();
            let mut request = request.clone();
            set_token(&mut request, token);
            async move { page(client.unary(request, call).await?) }
        })
    }
}
