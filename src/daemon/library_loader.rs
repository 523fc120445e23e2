//! Loads the image library ([`images::load`]: local folders parsed file by file, the catalog
//! cache's images read) on a blocking thread and hands it back to the main loop, whose one
//! thread also keeps the serial link's timers (ARCHITECTURE.md, "Data flow": disk work runs off
//! the thread that serves the serial port). One load at a time: asks that come while one runs
//! (a SIGHUP every second, refreshes ending) are served by one more load after it.

use tokio::sync::mpsc;

use super::images::{self, ImageLibrary};
use crate::config::Config;

/// The loader (see the module docs).
#[derive(Debug)]
pub struct LibraryLoader {
    running: bool,
    /// Another load was asked for while one ran; the configuration to load then.
    again: Option<Config>,
    done_tx: mpsc::Sender<ImageLibrary>,
    done_rx: mpsc::Receiver<ImageLibrary>,
}

impl Default for LibraryLoader {
    fn default() -> Self {
        let (done_tx, done_rx) = mpsc::channel(1);
        LibraryLoader {
            running: false,
            again: None,
            done_tx,
            done_rx,
        }
    }
}

impl LibraryLoader {
    /// Asks for a load of what `config` names: now, or after the one running.
    pub fn request(&mut self, config: &Config) {
        if self.running {
            self.again = Some(config.clone());
            return;
        }
        self.running = true;
        let config = config.clone();
        let done = self.done_tx.clone();
        tokio::task::spawn_blocking(move || {
            let _ = done.blocking_send(images::load(&config));
        });
    }

    /// The next library loaded (for the main loop's `select!`); then call
    /// [`LibraryLoader::loaded`].
    pub async fn next(&mut self) -> Option<ImageLibrary> {
        self.done_rx.recv().await
    }

    /// A load ended: starts the one asked for meanwhile, if any.
    pub fn loaded(&mut self) {
        self.running = false;
        if let Some(config) = self.again.take() {
            self.request(&config);
        }
    }
}
