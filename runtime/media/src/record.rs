//! Recording to WAV (PCM16), as the contract's recording actions need.
//!
//! [`Recorder`] records one direction (RecordAudio: voicemail, name capture) and stops on the
//! maximum duration, a terminating digit, or a stretch of silence. [`CallRecorder`] records a
//! call's two directions as one mono track, both as stereo (incoming left, outgoing right), or
//! mixed into one channel.
//!
//! A recording is written to `<name>.part`, flushed, `fsync`ed, renamed into place and its
//! directory `fsync`ed before [`Recorder::finish`] returns: a recording reported successful
//! survives a crash right after.

use crate::dtmf::Digit;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write recording {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode recording {path}: {why}")]
    Wav { path: PathBuf, why: String },
}

/// Why a recording stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordEnd {
    Duration,
    Silence,
    Terminator(Digit),
    /// Stopped from outside (hang-up, StopCallRecording, a new action list).
    Stopped,
}

/// What a finished recording holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    pub path: PathBuf,
    pub samples: u64,
    pub duration: Duration,
    pub bytes: u64,
}

/// When a one-direction recording stops.
#[derive(Debug, Clone)]
pub struct RecordLimits {
    pub sample_rate: u32,
    pub max_duration: Duration,
    /// `SilenceDurationInSeconds` and `SilenceThreshold` (1-1000).
    pub silence: Option<(Duration, u16)>,
    pub terminators: Vec<Digit>,
}

/// The RMS level (PCM16) below which a frame is silent, for the contract's 1-1000 scale.
/// The contract only gives loose reference points (1 a quiet room, 200 a crowded office, 1000
/// a loud voice); here the scale is linear, 4 PCM units per step: 200 is about -32 dBFS,
/// below normal telephone speech (-20 to -25 dBFS), 1000 about -18 dBFS.
pub fn silence_rms(threshold: u16) -> f64 {
    f64::from(threshold.clamp(1, 1000)) * 4.0
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A WAV file being written, committed durably by [`WavFile::commit`].
struct WavFile {
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    part: PathBuf,
    path: PathBuf,
    samples: u64,
    channels: u16,
    sample_rate: u32,
}

impl WavFile {
    fn create(path: &Path, sample_rate: u32, channels: u16) -> Result<WavFile, RecordError> {
        let part = path.with_extension("wav.part");
        let file = File::create(&part).map_err(io(&part))?;
        let spec = hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer =
            hound::WavWriter::new(BufWriter::new(file), spec).map_err(|e| RecordError::Wav {
                path: part.clone(),
                why: e.to_string(),
            })?;
        Ok(WavFile {
            writer: Some(writer),
            part,
            path: path.to_owned(),
            samples: 0,
            channels,
            sample_rate,
        })
    }

    fn write(&mut self, samples: &[i16]) -> Result<(), RecordError> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let mut sw = w.get_i16_writer(samples.len() as u32);
        for s in samples {
            sw.write_sample(*s);
        }
        sw.flush().map_err(|e| RecordError::Wav {
            path: self.part.clone(),
            why: e.to_string(),
        })?;
        self.samples += samples.len() as u64 / u64::from(self.channels);
        Ok(())
    }

    fn commit(mut self) -> Result<RecordingInfo, RecordError> {
        if let Some(w) = self.writer.take() {
            w.finalize().map_err(|e| RecordError::Wav {
                path: self.part.clone(),
                why: e.to_string(),
            })?;
        }
        // Flush the data to disk, then make the name durable.
        File::open(&self.part)
            .and_then(|f| f.sync_all())
            .map_err(io(&self.part))?;
        std::fs::rename(&self.part, &self.path).map_err(io(&self.path))?;
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        let bytes = std::fs::metadata(&self.path).map_err(io(&self.path))?.len();
        Ok(RecordingInfo {
            path: self.path.clone(),
            samples: self.samples,
            duration: Duration::from_secs_f64(self.samples as f64 / f64::from(self.sample_rate)),
            bytes,
        })
    }
}

impl Drop for WavFile {
    fn drop(&mut self) {
        // Not committed: leave no half-written file behind under the final name.
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// Records one direction until a limit is reached.
pub struct Recorder {
    file: WavFile,
    limits: RecordLimits,
    silent_samples: u64,
    ended: Option<RecordEnd>,
}

impl Recorder {
    pub fn create(path: &Path, limits: RecordLimits) -> Result<Recorder, RecordError> {
        Ok(Recorder {
            file: WavFile::create(path, limits.sample_rate, 1)?,
            limits,
            silent_samples: 0,
            ended: None,
        })
    }

    /// Appends received audio. Returns why the recording stopped, once it has.
    pub fn push(&mut self, samples: &[i16]) -> Result<Option<RecordEnd>, RecordError> {
        if self.ended.is_some() {
            return Ok(self.ended);
        }
        let max =
            (self.limits.max_duration.as_secs_f64() * f64::from(self.limits.sample_rate)) as u64;
        let room = max.saturating_sub(self.file.samples) as usize;
        let take = &samples[..samples.len().min(room)];
        self.file.write(take)?;
        if let Some((duration, threshold)) = self.limits.silence {
            let rms = if take.is_empty() {
                0.0
            } else {
                (take.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / take.len() as f64).sqrt()
            };
            if rms < silence_rms(threshold) {
                self.silent_samples += take.len() as u64;
            } else {
                self.silent_samples = 0;
            }
            let needed = (duration.as_secs_f64() * f64::from(self.limits.sample_rate)) as u64;
            if self.silent_samples >= needed {
                self.ended = Some(RecordEnd::Silence);
            }
        }
        if self.file.samples >= max {
            self.ended = Some(RecordEnd::Duration);
        }
        Ok(self.ended)
    }

    /// A digit from the far end: a terminator stops the recording.
    pub fn digit(&mut self, digit: Digit) -> Option<RecordEnd> {
        if self.ended.is_none() && self.limits.terminators.contains(&digit) {
            self.ended = Some(RecordEnd::Terminator(digit));
        }
        self.ended
    }

    /// Writes the recording durably and says why it ended.
    pub fn finish(self) -> Result<(RecordingInfo, RecordEnd), RecordError> {
        let end = self.ended.unwrap_or(RecordEnd::Stopped);
        Ok((self.file.commit()?, end))
    }
}

/// Which audio of a call is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// What the party says (into the service), mono.
    Incoming,
    /// What the party hears, mono.
    Outgoing,
    /// Stereo: incoming left, outgoing right.
    Both,
    /// One channel with both directions summed.
    Mixed,
}

/// Records a call's directions. Frames are aligned by arrival: when one direction runs more
/// than `max_skew_frames` ahead, the other is padded with silence.
pub struct CallRecorder {
    file: WavFile,
    track: Track,
    incoming: Vec<i16>,
    outgoing: Vec<i16>,
    max_skew: usize,
}

impl CallRecorder {
    pub fn create(
        path: &Path,
        track: Track,
        sample_rate: u32,
    ) -> Result<CallRecorder, RecordError> {
        let channels = if track == Track::Both { 2 } else { 1 };
        Ok(CallRecorder {
            file: WavFile::create(path, sample_rate, channels)?,
            track,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            max_skew: sample_rate as usize / 10,
        })
    }

    pub fn incoming(&mut self, samples: &[i16]) -> Result<(), RecordError> {
        self.incoming.extend_from_slice(samples);
        self.drain(false)
    }

    pub fn outgoing(&mut self, samples: &[i16]) -> Result<(), RecordError> {
        self.outgoing.extend_from_slice(samples);
        self.drain(false)
    }

    fn drain(&mut self, all: bool) -> Result<(), RecordError> {
        let (a, b) = (self.incoming.len(), self.outgoing.len());
        let skew = a.abs_diff(b);
        let n = if all || skew > self.max_skew {
            a.max(b)
        } else {
            a.min(b)
        };
        if n == 0 {
            return Ok(());
        }
        self.incoming.resize(n.max(a), 0);
        self.outgoing.resize(n.max(b), 0);
        let inc: Vec<i16> = self.incoming.drain(..n).collect();
        let out: Vec<i16> = self.outgoing.drain(..n).collect();
        let frames: Vec<i16> = match self.track {
            Track::Incoming => inc,
            Track::Outgoing => out,
            Track::Mixed => inc
                .iter()
                .zip(&out)
                .map(|(x, y)| (i32::from(*x) + i32::from(*y)).clamp(-32_768, 32_767) as i16)
                .collect(),
            Track::Both => inc.iter().zip(&out).flat_map(|(x, y)| [*x, *y]).collect(),
        };
        self.file.write(&frames)
    }

    pub fn finish(mut self) -> Result<RecordingInfo, RecordError> {
        self.drain(true)?;
        let CallRecorder { file, .. } = self;
        file.commit()
    }
}
