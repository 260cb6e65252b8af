//! Peer links over mio: the quorum and election ports of `server.N` lines.
