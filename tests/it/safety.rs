//! Safety on disk and honest errors: what accel refuses, and that it never writes outside its folders.
