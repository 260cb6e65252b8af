//! Four-letter words from the client side: connect, send the word, read the answer until the
//! server closes the connection (as ZooKeeper's servers do after answering one).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::constants::FOUR_LETTER_TIMEOUT;

/// Sends `word` (e.g. `ruok`, `srvr`, `mntr`) to the server at `address` and returns its
/// whole answer.
///
/// # Errors
/// The I/O error when the server cannot be reached within [`FOUR_LETTER_TIMEOUT`], or does
/// not finish answering within it.
pub fn four_letter_word(address: SocketAddr, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, FOUR_LETTER_TIMEOUT)?;
    stream.set_read_timeout(Some(FOUR_LETTER_TIMEOUT))?;
    stream.write_all(word.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}
