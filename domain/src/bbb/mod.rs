//! The BBB protocol, in one place: checksums, query parameters, reading
//! servers' XML answers and writing BBB's own. Used by the facade, the
//! poller, the simulator and the load tool alike.

pub mod checksum;
pub mod params;
pub mod xml;
pub mod xml_write;
