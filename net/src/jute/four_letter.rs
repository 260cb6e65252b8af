//! Four-letter words: plain-text admin commands on the client port.
//!
//! ```text
//! connection = four-letter-word [trace-mask:long]   ; "stmk" only; reply text, then close
//!            | ConnectRequest-frame frame*
//! ```
//!
//! ZooKeeper reads the first 4 bytes of a new connection as a frame length and, before
//! checking it against `jute.maxbuffer`, compares the `int` with the known words (`ruok` is
//! 0x72756f6b, far above any real length). Only the first frame of a connection is checked,
//! and only a known word counts; any other large length is a frame-length error.

use crate::constants::FOUR_LETTER_WORD_BYTES;

macro_rules! four_letter_words {
    ($($(#[$meta:meta])* $variant:ident = $bytes:expr,)+) => {
        /// A four-letter word ZooKeeper's `FourLetterCommands` knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FourLetterWord {
            $($(#[$meta])* $variant,)+
        }

        impl FourLetterWord {
            /// Every word.
            pub const ALL: &'static [FourLetterWord] = &[$(FourLetterWord::$variant,)+];

            /// The word's 4 bytes as sent on the wire.
            #[must_use]
            pub const fn bytes(self) -> [u8; FOUR_LETTER_WORD_BYTES] {
                match self {
                    $(FourLetterWord::$variant => *$bytes,)+
                }
            }
        }
    };
}

four_letter_words! {
    Conf = b"conf",
    Cons = b"cons",
    Crst = b"crst",
    Dirs = b"dirs",
    Dump = b"dump",
    Envi = b"envi",
    Gtmk = b"gtmk",
    Hash = b"hash",
    Isro = b"isro",
    Mntr = b"mntr",
    Ruok = b"ruok",
    Srst = b"srst",
    Srvr = b"srvr",
    Stat = b"stat",
    /// Followed by an 8-byte trace mask.
    Stmk = b"stmk",
    Wchc = b"wchc",
    Wchp = b"wchp",
    Wchs = b"wchs",
    /// Telnet's "interrupt process" sequence (IAC IP IAC DO), which ZooKeeper treats as a
    /// request to close.
    TelnetClose = &[0xff, 0xf4, 0xff, 0xfd],
}

impl FourLetterWord {
    /// The word whose bytes are the 4-byte prefix `prefix`, if any.
    #[must_use]
    pub fn from_bytes(prefix: [u8; FOUR_LETTER_WORD_BYTES]) -> Option<Self> {
        Self::ALL.iter().copied().find(|word| word.bytes() == prefix)
    }

    /// The word a first frame length of `length` spells, if any (ZooKeeper's check).
    #[must_use]
    pub fn from_length_prefix(length: i32) -> Option<Self> {
        Self::from_bytes(length.to_be_bytes())
    }

    /// The word at the start of a connection's first bytes; `None` when fewer than 4 bytes
    /// have arrived or they spell no word.
    #[must_use]
    pub fn detect(buffer: &[u8]) -> Option<Self> {
        buffer.first_chunk::<FOUR_LETTER_WORD_BYTES>().and_then(|prefix| Self::from_bytes(*prefix))
    }

    /// The word as text (`"ruok"`); telnet close is `"telnet close"`, as ZooKeeper logs it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FourLetterWord::TelnetClose => "telnet close",
            word => word.text(),
        }
    }

    fn text(self) -> &'static str {
        match self {
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Gtmk => "gtmk",
            FourLetterWord::Hash => "hash",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Stmk => "stmk",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Wchs => "wchs",
            FourLetterWord::TelnetClose => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_recognised() {
        assert_eq!(FourLetterWord::detect(b"ruok"), Some(FourLetterWord::Ruok));
        assert_eq!(FourLetterWord::detect(b"mntr\n"), Some(FourLetterWord::Mntr));
        assert_eq!(FourLetterWord::detect(b"ruo"), None);
        assert_eq!(FourLetterWord::detect(b"RUOK"), None);
        assert_eq!(FourLetterWord::from_length_prefix(0x7275_6f6b), Some(FourLetterWord::Ruok));
        assert_eq!(FourLetterWord::from_length_prefix(45), None);
        assert_eq!(
            FourLetterWord::from_length_prefix(0xfff4_fffdu32 as i32).map(|w| w.name()),
            Some("telnet close")
        );
        for &word in FourLetterWord::ALL {
            assert_eq!(FourLetterWord::from_bytes(word.bytes()), Some(word));
            if word != FourLetterWord::TelnetClose {
                assert_eq!(word.name().as_bytes(), word.bytes());
            }
        }
    }
}
