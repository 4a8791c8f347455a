//! Test support shared by the agent's, the server's and the end-to-end tests: builders of
//! protocol messages with the defaults a gateway would send, fixed times for tests that
//! pass time in, a TCP device that goes down and up (on demand or at random), a TCP
//! proxy standing for a gateway's network link, gateways played by plain MQTT clients,
//! a headless Chromium session over WebDriver, and waiting on conditions with a deadline
//! instead of sleeping.
//!
//! Of the workspace it depends on the protocol crate only (and on rumqttc for its MQTT
//! clients), so the agent and the server can both take it as a dev-dependency; what needs
//! one of them stays with that crate (the server's store and registry fixtures are
//! `campuswatch_server::testing`, behind its `test-util` feature).

pub mod messages;
pub mod mqtt;
pub mod net;
pub mod time;
pub mod wait;
pub mod webdriver;

pub use messages::{birth, death, device, event, heartbeat, inventory};
pub use mqtt::RawGateway;
pub use net::{FlappingDevice, LinkMode, LinkProxy, TcpDevice};
pub use time::{at, t, T0_SECS};
pub use wait::{wait_for, wait_until};
