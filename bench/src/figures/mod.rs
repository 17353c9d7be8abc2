//! The figures and how they are shown: latency histograms ([`latency`], with the clock every
//! stamp is read from), the reports' JSON documents and tables ([`report`]), the environment
//! a report opens with ([`env`](mod@env)), /proc figures of the bench and the servers
//! ([`sysstat`]), the live progress line ([`progress`]) and the ramp's chart ([`chart`]).

pub mod chart;
pub mod env;
pub mod latency;
pub mod progress;
pub mod report;
pub mod sysstat;
