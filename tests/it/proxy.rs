//! A fault proxy on loopback between accel and the local cloud.
