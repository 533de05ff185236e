//! Integration tests of the recording pipeline: archive, spool, tree, playback.
