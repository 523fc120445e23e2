//! Serving a transfer (ZCL8 §11.13.6–11.13.8): which image a block or page request names,
//! admission under the concurrency cap, the block itself and its pacing, and page streams.
//! The Upgrade End exchange and the history are in `upgrade_end`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::pacing::BlockSizeLimits;
use super::policy::{self, DeviceQuery, NoImageReason, WILDCARD};
use super::progress::{self, TransferStats};
use super::request::{BlockReply, Message, ReplyTo, Request, RequestHeader};
use super::session::{LastQuery, PageStream, Pending, Session, Transfer, after};
use super::{
    DeviceAddr, DeviceKey, FailureReason, ImageKey, OtaImage, OtaServer, Queued, ServerEvent,
    TransferProgress, TransferState, ZclStatus,
};

impl OtaServer {
    /// The image a block or page request names, and the query it answers: the one its
    /// transfer is on, the one offered to this device, or (stateless resume, e.g. after a
    /// restart of the daemon) the catalog's single image with exactly that key. Every answer
    /// passes the same policy check as an offer ([`policy::check_transfer`]): pins, the deny
    /// list, restrictions, the destination and a disabled device apply to every block.
    pub(super) fn resolve_file(
        &self,
        session: &mut Session,
        file: ImageKey,
    ) -> Option<(Arc<OtaImage>, Option<LastQuery>)> {
        let known = match &session.transfer {
            Some(transfer) if transfer.image.key() == file => {
                Some((Arc::clone(&transfer.image), transfer.asked))
            }
            _ => session
                .offered(file)
                .map(|offer| (Arc::clone(&offer.image), offer.asked)),
        };
        if let Some((image, asked)) = known {
            return match self.check_transfer(session, &image, asked) {
                Ok(()) => Some((image, asked)),
                Err(reason) => {
                    debug!(device = %session.addr, image = %file, %reason, "refused by policy");
                    None
                }
            };
        }
        // Not offered in this run: the device's last query, if it asked one for this
        // manufacturer and type, is what the image must suit.
        let asked = session.last_query.filter(|q| {
            (file.manufacturer_code == WILDCARD || q.manufacturer_code == file.manufacturer_code)
                && (file.image_type == WILDCARD || q.image_type == file.image_type)
        });
        let mut matches = self.images.iter().filter(|image| {
            image.key() == file && self.check_transfer(session, image, asked).is_ok()
        });
        let first = matches.next()?;
        if matches.any(|other| !other.same_bytes(first)) {
            warn!(image = %file, "requested image has conflicting sources; refusing");
            return None;
        }
        info!(device = %session.addr, image = %file, "serving a request for an image not offered in this run (resume)");
        let image = Arc::clone(first);
        session.remember_offer(Arc::clone(&image), asked);
        Some((image, asked))
    }

    /// [`policy::check_transfer`] for this device: against the query the image answered, or
    /// with its running version unknown.
    pub(super) fn check_transfer(
        &self,
        session: &Session,
        image: &OtaImage,
        asked: Option<LastQuery>,
    ) -> Result<(), NoImageReason> {
        let key = image.key();
        let identity = session
            .addr
            .ieee
            .and_then(|ieee| self.identities.get(&ieee));
        let query = DeviceQuery {
            ieee: session.addr.ieee,
            manufacturer_code: asked.map_or(key.manufacturer_code, |q| q.manufacturer_code),
            image_type: asked.map_or(key.image_type, |q| q.image_type),
            current_file_version: asked.map_or(0, |q| q.current_file_version),
            hardware_version: asked
                .and_then(|q| q.hardware_version)
                .or_else(|| session.last_query.and_then(|q| q.hardware_version)),
            model: identity.and_then(|i| i.model_id.as_deref()),
            manufacturer_name: identity.and_then(|i| i.manufacturer_name.as_deref()),
            vendor_file_version: identity.and_then(|i| i.vendor_file_version),
        };
        policy::check_transfer(image, &query, asked.is_some(), &self.config)
    }

    pub(super) fn block_size(
        &self,
        session: &Session,
        header: &RequestHeader,
        device_maximum: u8,
    ) -> u8 {
        let manufacturer_code = session
            .last_query
            .map(|q| q.manufacturer_code)
            .or_else(|| {
                session
                    .transfer
                    .as_ref()
                    .map(|t| t.image.key().manufacturer_code)
            })
            .unwrap_or(0);
        let explicit_cap = self
            .config
            .explicit_block_cap(manufacturer_code, session.addr.ieee);
        let reserve = usize::from(self.config.aps_encryption_reserve)
            + usize::from(self.config.source_route_reserve);
        BlockSizeLimits {
            device_maximum,
            configured_cap: explicit_cap.unwrap_or(self.config.block_size_cap),
            max_aps_payload: self.max_aps_payload,
            zcl_header_len: if header.manufacturer_code.is_some() {
                5
            } else {
                3
            },
            reserve: if explicit_cap.is_some() { 0 } else { reserve },
        }
        .block_size()
    }

    /// The idle timeout: the device's override, else that of the manufacturer of the image it
    /// is downloading (not of the manufacturer it claims: claiming to be Bosch must not buy an
    /// hour), else the global one.
    pub(super) fn idle_timeout(&self, session: &Session) -> Duration {
        let (manufacturer_code, image_type) = session
            .transfer
            .as_ref()
            .map(|t| {
                let key = t.image.key();
                (key.manufacturer_code, key.image_type)
            })
            .filter(|(code, _)| *code != WILDCARD)
            .or_else(|| {
                session
                    .last_query
                    .map(|q| (q.manufacturer_code, q.image_type))
            })
            .unwrap_or((0, 0));
        self.config
            .idle_timeout_for(manufacturer_code, image_type, session.addr.ieee)
    }

    /// Answers FIFO requests whose turn has come (block requests wait for the pacing gap).
    pub(super) fn drain(&mut self, session: &mut Session, key: DeviceKey, now: Instant) {
        while !session.pending.is_empty() {
            if now < session.next_block_at {
                break;
            }
            let Some(Pending {
                header,
                request,
                raw,
            }) = session.pending.pop_front()
            else {
                break;
            };
            if let Request::ImageBlock {
                file,
                offset,
                maximum_data_size,
                minimum_block_period,
                ..
            } = request
            {
                let message = self.answer_block(
                    session,
                    key,
                    &header,
                    BlockAsk {
                        wanted: Wanted {
                            file,
                            offset,
                            maximum_data_size,
                        },
                        minimum_block_period,
                    },
                    now,
                );
                self.reply(session, key, header, raw, message, now);
            }
        }
    }

    /// Checks a block or page request and makes sure the device holds a slot; `Err` is the
    /// Image Block Response that refuses it.
    pub(super) fn admit_transfer(
        &mut self,
        session: &mut Session,
        key: DeviceKey,
        header: &RequestHeader,
        wanted: Wanted,
        now: Instant,
    ) -> Result<(Arc<OtaImage>, u8), BlockReply> {
        let Wanted {
            file,
            offset,
            maximum_data_size,
        } = wanted;
        let Some((image, asked)) = self.resolve_file(session, file) else {
            info!(device = %session.addr, image = %file, "request for an image not offered or not allowed: ABORT");
            return Err(BlockReply::Status(ZclStatus::ABORT));
        };
        if let Err(withheld) = self.installer_gate(session.addr.ieee, file.file_version, now) {
            info!(device = %session.addr, image = %file, %withheld, "block request for a withheld image: ABORT");
            return Err(BlockReply::Status(ZclStatus::ABORT));
        }
        if offset >= image.size() {
            info!(device = %session.addr, image = %file, offset, size = image.size(), "offset past the end");
            return Err(BlockReply::Status(ZclStatus::MALFORMED_COMMAND));
        }
        let block_size = self.block_size(session, header, maximum_data_size);
        if block_size == 0 {
            if maximum_data_size == 0 {
                return Err(BlockReply::Status(ZclStatus::MALFORMED_COMMAND));
            }
            warn!(
                max_aps_payload = self.max_aps_payload,
                "the coordinator's APS payload leaves no room for image data"
            );
            return Err(BlockReply::Status(ZclStatus::ABORT));
        }
        let same_transfer = session.transfer_key() == Some(file)
            && session
                .transfer
                .as_ref()
                .is_some_and(|t| t.state != TransferState::Failed);
        if !same_transfer {
            if let Some(old) = session.transfer.take() {
                self.end_transfer(
                    session,
                    key,
                    old,
                    TransferState::Failed,
                    Some(FailureReason::Superseded),
                );
            }
            let span = tracing::info_span!(
                "ota_transfer",
                device = %session.addr,
                image = %file,
                size = image.size()
            );
            session.transfer = Some(Transfer {
                image: Arc::clone(&image),
                asked,
                state: TransferState::Queued,
                stats: TransferStats::new(now, offset),
                last_request_at: now,
                downloaded_at: None,
                from_version: session.last_query.map(|q| q.current_file_version),
                slot_mark: None,
                span,
            });
        }
        let needs_slot = session
            .transfer
            .as_ref()
            .is_some_and(|t| matches!(t.state, TransferState::Queued | TransferState::Downloading));
        if needs_slot {
            let request_time = self.busy_request_time(now);
            let keep_place = request_time.saturating_mul(3) + Duration::from_secs(60);
            let rank = self.queue_rank(session.addr.ieee);
            if !self.admission.try_admit_ranked(
                key,
                self.config.max_concurrent_transfers,
                now,
                keep_place,
                rank,
            ) {
                if let Some(transfer) = &mut session.transfer {
                    transfer.last_request_at = now;
                    let _entered = transfer.span.enter();
                    if same_transfer {
                        debug!(retry_after = ?request_time, "still over the concurrency cap");
                    } else {
                        info!(retry_after = ?request_time, "over the concurrency cap: WAIT_FOR_DATA");
                    }
                }
                if !same_transfer {
                    self.events.push_back(ServerEvent::TransferQueued {
                        device: session.addr,
                        image: file,
                        retry_after: request_time,
                    });
                }
                return Err(BlockReply::WaitForData {
                    request_time: whole_seconds_at_least_one(request_time),
                    // zigpy and ZCL8 always carry the field; 0 is its default.
                    minimum_block_period: Some(session.minimum_block_period.unwrap_or(0)),
                });
            }
        }
        if let Some(transfer) = &mut session.transfer {
            transfer.last_request_at = now;
            // Progress is measured from the moment the slot was granted (a mark from an
            // earlier slot does not count).
            if let Some(since) = self.admission.active_since(&key)
                && transfer.slot_mark.is_none_or(|(at, _)| at < since)
            {
                transfer.slot_mark = Some((since, offset));
            }
            if transfer.state == TransferState::Queued {
                transfer.state = TransferState::Downloading;
                transfer.stats = TransferStats::new(now, offset);
                let _entered = transfer.span.enter();
                info!(offset, block_size, "transfer started");
                self.events.push_back(ServerEvent::TransferStarted {
                    device: session.addr,
                    image: file,
                    offset,
                });
            }
        }
        Ok((image, block_size))
    }

    pub(super) fn answer_block(
        &mut self,
        session: &mut Session,
        key: DeviceKey,
        header: &RequestHeader,
        ask: BlockAsk,
        now: Instant,
    ) -> Message {
        if ask.minimum_block_period.is_some() {
            session.minimum_block_period = ask.minimum_block_period;
        }
        let (image, block_size) = match self.admit_transfer(session, key, header, ask.wanted, now) {
            Ok(admitted) => admitted,
            Err(refusal) => return Message::ImageBlockResponse(refusal),
        };
        let Some(data) = image.block(ask.wanted.offset, block_size) else {
            return Message::ImageBlockResponse(BlockReply::Status(ZclStatus::MALFORMED_COMMAND));
        };
        self.record_served(session, key, &image, ask.wanted.offset, &data, now);
        session.next_block_at = after(now, self.block_gap(session));
        Message::ImageBlockResponse(BlockReply::Data {
            file: image.key(),
            offset: ask.wanted.offset,
            data,
        })
    }

    /// The gap the device asked for between blocks (its MinimumBlockPeriod) or the configured
    /// one, whichever is longer.
    pub(super) fn block_gap(&self, session: &Session) -> Duration {
        let device = session
            .minimum_block_period
            .map(|p| self.config.minimum_block_period_unit.duration(p))
            .unwrap_or_default();
        device.max(self.config.min_block_interval)
    }

    pub(super) fn record_served(
        &mut self,
        session: &mut Session,
        key: DeviceKey,
        image: &Arc<OtaImage>,
        offset: u32,
        data: &Bytes,
        now: Instant,
    ) {
        let Some(transfer) = &mut session.transfer else {
            return;
        };
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let end = offset.saturating_add(len);
        let size = image.size();
        let milestone = transfer.stats.record_block(now, len, end, size);
        {
            let _entered = transfer.span.enter();
            debug!(offset, len, "block");
        }
        if milestone && transfer.state == TransferState::Downloading {
            let snapshot = snapshot(session.addr, transfer, None, None);
            {
                let _entered = transfer.span.enter();
                info!(
                    percent = snapshot.percent,
                    bytes_per_second = snapshot.bytes_per_second,
                    eta_seconds = snapshot.eta_seconds,
                    "progress"
                );
            }
            self.events.push_back(ServerEvent::Progress(snapshot));
        }
        if end >= size && transfer.state == TransferState::Downloading {
            transfer.state = TransferState::Waiting;
            transfer.downloaded_at = Some(now);
            {
                let _entered = transfer.span.enter();
                info!("every byte served; waiting for Upgrade End Request");
            }
            self.admission.release(&key);
            self.events.push_back(ServerEvent::DownloadComplete {
                device: session.addr,
                image: image.key(),
            });
        }
    }

    /// When a device over the cap should come back: the soonest a slot is expected to free up
    /// (a running transfer's end, or a holder too slow for the progress rule losing its slot),
    /// within bounds, or the configured default.
    pub(super) fn busy_request_time(&self, now: Instant) -> Duration {
        let (low, high) = self.config.busy_retry_bounds;
        let soonest = self
            .admission
            .active()
            .iter()
            .filter_map(|key| self.sessions.get(key))
            .filter_map(|session| session.transfer.as_ref())
            .filter_map(|t| {
                let ends = t
                    .stats
                    .rate_and_eta(t.image.size())
                    .1
                    .map(Duration::from_secs);
                ends.into_iter().chain(self.slot_loss_due(t, now)).min()
            })
            .min();
        match soonest {
            Some(wait) => wait.clamp(low, high.max(low)),
            None => self.config.busy_retry_after,
        }
    }

    pub(super) fn start_page(
        &mut self,
        session: &mut Session,
        key: DeviceKey,
        header: RequestHeader,
        raw: Bytes,
        ask: PageAsk,
        now: Instant,
    ) -> Option<Message> {
        if ask.page_size == 0 {
            // An empty page asks for nothing: malformed, as zigpy answers it.
            return Some(Message::ImageBlockResponse(BlockReply::Status(
                ZclStatus::MALFORMED_COMMAND,
            )));
        }
        let (image, block_size) = match self.admit_transfer(session, key, &header, ask.wanted, now)
        {
            Ok(admitted) => admitted,
            Err(refusal) => return Some(Message::ImageBlockResponse(refusal)),
        };
        let end_offset = ask
            .wanted
            .offset
            .saturating_add(u32::from(ask.page_size))
            .min(image.size());
        let spacing = ask
            .spacing
            .max(self.block_gap(session))
            .max(self.config.min_page_spacing);
        if let Some(transfer) = &session.transfer {
            let _entered = transfer.span.enter();
            info!(
                offset = ask.wanted.offset,
                page_size = ask.page_size,
                ?spacing,
                "streaming page"
            );
        }
        session.page = Some(PageStream {
            header,
            raw_request: raw,
            image,
            next_offset: ask.wanted.offset,
            end_offset,
            block_size,
            spacing,
            next_due: session.next_block_at.max(now),
            awaiting_delivery_since: None,
        });
        None
    }

    /// Sends the page's next block when it is due and the coordinator took the previous one.
    pub(super) fn pump_page(&mut self, session: &mut Session, key: DeviceKey, now: Instant) {
        let Some(page) = &session.page else {
            return;
        };
        if now < page.next_due || session.unpolled > 0 {
            return;
        }
        if let Some(since) = page.awaiting_delivery_since
            && now < after(since, super::PAGE_DELIVERY_FALLBACK)
        {
            return;
        }
        let image = Arc::clone(&page.image);
        let offset = page.next_offset;
        let header = page.header;
        let room = page.end_offset.saturating_sub(offset);
        let len = u8::try_from(room).unwrap_or(u8::MAX).min(page.block_size);
        let Some(data) = image.block(offset, len).filter(|data| !data.is_empty()) else {
            session.page = None;
            return;
        };
        let served = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.record_served(session, key, &image, offset, &data, now);
        if let Some(transfer) = &mut session.transfer {
            transfer.last_request_at = now;
        }
        let gap = self.block_gap(session);
        if let Some(page) = &mut session.page {
            page.next_offset = offset.saturating_add(served);
            page.next_due = after(now, page.spacing);
            if self.config.pace_pages_by_delivery {
                page.awaiting_delivery_since = Some(now);
            }
            if page.next_offset >= page.end_offset {
                session.page = None;
            }
        }
        session.next_block_at = after(now, gap);
        Queued::answer(
            &mut self.transmit,
            session,
            key,
            ReplyTo::Request(header),
            Message::ImageBlockResponse(BlockReply::Data {
                file: image.key(),
                offset,
                data,
            }),
        );
    }
}

/// The part of the OTA file a block or page request asks for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Wanted {
    pub(super) file: ImageKey,
    pub(super) offset: u32,
    pub(super) maximum_data_size: u8,
}

/// An Image Block Request, reduced to what serving it needs.
pub(super) struct BlockAsk {
    pub(super) wanted: Wanted,
    pub(super) minimum_block_period: Option<u16>,
}

/// An Image Page Request, reduced to what streaming it needs.
pub(super) struct PageAsk {
    pub(super) wanted: Wanted,
    pub(super) page_size: u16,
    pub(super) spacing: Duration,
}

/// The status-socket view of a transfer.
pub(super) fn snapshot(
    addr: DeviceAddr,
    transfer: &Transfer,
    failure: Option<FailureReason>,
    confirmed: Option<bool>,
) -> TransferProgress {
    let key = transfer.image.key();
    let size = transfer.image.size();
    let (bytes_per_second, eta_seconds) = transfer.stats.rate_and_eta(size);
    let downloading = transfer.state == TransferState::Downloading;
    TransferProgress {
        ieee: addr.ieee,
        nwk: addr.nwk,
        manufacturer_code: key.manufacturer_code,
        image_type: key.image_type,
        file_version: key.file_version,
        offset: transfer.stats.offset,
        image_size: size,
        state: transfer.state,
        bytes_per_second,
        eta_seconds: eta_seconds.filter(|_| downloading),
        percent: progress::percent(transfer.stats.offset, size),
        failure,
        confirmed,
        from_version: transfer.from_version,
    }
}

/// Whole seconds, rounded up, at least 1 (a WAIT_FOR_DATA of 0 would invite a busy loop).
pub(super) fn whole_seconds_at_least_one(d: Duration) -> u32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_times_are_whole_seconds_and_never_zero() {
        assert_eq!(whole_seconds_at_least_one(Duration::ZERO), 1);
        assert_eq!(whole_seconds_at_least_one(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds_at_least_one(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds_at_least_one(Duration::from_secs(60)), 60);
    }
}
