//! Faults on the wire: outages, hangs and lost answers, through the fault proxy.
