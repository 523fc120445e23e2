//! `ezsp_frames!`: the one table of EZSP frames (UG100 §3-§5 and the EmberZNet 8.x EZSP
//! reference) and the helper macros it expands through. Wire enums use the crate's one
//! [`wire_enum!`](crate::wire) macro.

/// The table of EZSP frames: from one line per frame it generates the [`FrameId`] constants
/// and names, the versions each frame exists in, the [`Command`], [`Response`] and [`Callback`]
/// enums, and their encode and decode dispatch (quinn's `frame_types!`, rustls'
/// `enum_builder!`). A line is
///
/// ```text
/// CONST = 0xID, "specName", MIN..=MAX, CommandVariant[(Params)] => ResponseVariant[(Params) | { field: Type [= Ezsp|Ember], … }];
/// ```
///
/// in `commands`; `responses` holds NCP → host frames that answer no command of their own
/// (`invalidCommand`), `callbacks` the unsolicited ones, `raw_commands` commands named and
/// versioned here whose parameters travel as bytes ([`Command::Other`], [`Response::Other`]:
/// the stack frames only the simulated NCP answers), and `other_ids` ids we name but do not
/// decode. A `raw_commands` line is `CONST = 0xID, "specName", MIN..=MAX;`. A `Params` struct has crate-private `read(&mut ParamReader)` and
/// `write(&self, &mut ParamWriter)`; an inline field's type implements [`super::params::Field`],
/// and a status field names the pre-v14 one-byte status it holds (`= Ezsp` or `= Ember`).
///
/// [`FrameId`]: super::frame::FrameId
/// [`Command`]: super::command::Command
/// [`Response`]: super::command::Response
/// [`Callback`]: super::command::Callback
macro_rules! ezsp_frames {
    (
        commands {
            $(
                $(#[$cmeta:meta])*
                $cconst:ident = $cid:literal, $cname:literal, $cmin:literal ..= $cmax:literal,
                $cvar:ident $(($cty:ty))?
                => $rvar:ident $(($rty:ty))?
                $({ $( $(#[$rfmeta:meta])* $rf:ident : $rfty:ty $(= $rkind:ident)? ),* $(,)? })?;
            )*
        }
        responses {
            $(
                $(#[$xmeta:meta])*
                $xconst:ident = $xid:literal, $xname:literal, $xmin:literal ..= $xmax:literal,
                $xvar:ident $(($xty:ty))?
                $({ $( $(#[$xfmeta:meta])* $xf:ident : $xfty:ty $(= $xkind:ident)? ),* $(,)? })?;
            )*
        }
        callbacks {
            $(
                $(#[$bmeta:meta])*
                $bconst:ident = $bid:literal, $bname:literal, $bmin:literal ..= $bmax:literal,
                $bvar:ident $(($bty:ty))?
                $({ $( $(#[$bfmeta:meta])* $bf:ident : $bfty:ty $(= $bkind:ident)? ),* $(,)? })?;
            )*
        }
        raw_commands {
            $(
                $(#[$rmeta:meta])*
                $rconst:ident = $rid:literal, $rname:literal, $rmin:literal ..= $rmax:literal;
            )*
        }
        other_ids {
            $( $(#[$ometa:meta])* $oconst:ident = $oid:literal, $oname:literal; )*
        }
    ) => {
        $crate::wire::wire_enum! {
            /// An EZSP frame id (the command, response or callback number). The ids this crate
            /// knows are the same in every version from v4 to v17; [`frame_versions`] says in
            /// which versions each frame exists.
            FrameId(u16) {
                $($cconst = $cid,)*
                $($xconst = $xid,)*
                $($bconst = $bid,)*
                $($(#[$rmeta])* $rconst = $rid,)*
                $($oconst = $oid,)*
            }
        }

        impl FrameId {
            /// True for the ids that only ever travel NCP → host unsolicited (callbacks).
            pub fn is_callback(self) -> bool {
                matches!(self, $(FrameId::$bconst)|*)
            }
        }

        /// Every frame id in the table (commands, responses, callbacks), in table order.
        pub const FRAME_IDS: &[FrameId] = &[
            $(FrameId::$cconst,)*
            $(FrameId::$xconst,)*
            $(FrameId::$bconst,)*
            $(FrameId::$rconst,)*
        ];

        /// The EZSP versions in which the frame `frame_id` exists, for the frames this crate
        /// decodes.
        pub fn frame_versions(frame_id: FrameId) -> Option<::core::ops::RangeInclusive<u8>> {
            match frame_id {
                $(FrameId::$cconst => Some($cmin..=$cmax),)*
                $(FrameId::$xconst => Some($xmin..=$xmax),)*
                $(FrameId::$bconst => Some($bmin..=$bmax),)*
                $(FrameId::$rconst => Some($rmin..=$rmax),)*
                _ => None,
            }
        }

        /// The spec's name of a command or callback, for error messages.
        pub fn command_name(frame_id: FrameId) -> &'static str {
            match frame_id {
                $(FrameId::$cconst => $cname,)*
                $(FrameId::$xconst => $xname,)*
                $(FrameId::$bconst => $bname,)*
                $(FrameId::$rconst => $rname,)*
                $(FrameId::$oconst => $oname,)*
                _ => "unknown frame",
            }
        }

        /// "<command> response", for error messages about responses.
        fn response_name(frame_id: FrameId) -> &'static str {
            match frame_id {
                $(FrameId::$cconst => concat!($cname, " response"),)*
                $(FrameId::$xconst => $xname,)*
                $(FrameId::$rconst => concat!($rname, " response"),)*
                _ => "unknown response",
            }
        }

        $crate::ezsp::macros::frame_enum! {
            /// A host → NCP command.
            Command(command_name, EXTENDED_COMMAND) {
                $( #[doc = concat!("`", $cname, "`.")] $cconst => $cvar $(($cty))?; )*
            }
        }

        $crate::ezsp::macros::frame_enum! {
            /// An NCP → host response to a command.
            Response(response_name, EXTENDED_RESPONSE) {
                $( $(#[$cmeta])* $cconst => $rvar $(($rty))? $({ $( $(#[$rfmeta])* $rf : $rfty $(= $rkind)? ),* })?; )*
                $( $(#[$xmeta])* $xconst => $xvar $(($xty))? $({ $( $(#[$xfmeta])* $xf : $xfty $(= $xkind)? ),* })?; )*
            }
        }

        $crate::ezsp::macros::frame_enum! {
            /// An unsolicited NCP → host callback. When the simulated NCP encodes one, its
            /// sequence must not be that of a command the host is still waiting for.
            Callback(command_name, EXTENDED_ASYNC_CALLBACK) {
                $( $(#[$bmeta])* $bconst => $bvar $(($bty))? $({ $( $(#[$bfmeta])* $bf : $bfty $(= $bkind)? ),* })?; )*
            }
        }
    };
}

/// One of the table's three frame enums ([`Command`], [`Response`], [`Callback`]): the enum with
/// its `Other` catch-all, and its `frame_id`, `encode_parameters`, `decode_parameters` and
/// `encode_frame`. `Enum(names, CONTROL)`: `names` is the function that names a frame id in
/// error messages, `CONTROL` the [`FrameControl`] its frames travel with.
///
/// [`Command`]: super::command::Command
/// [`Response`]: super::command::Response
/// [`Callback`]: super::command::Callback
/// [`FrameControl`]: super::frame::FrameControl
macro_rules! frame_enum {
    (
        $(#[$emeta:meta])*
        $enum:ident($names:ident, $control:ident) {
            $(
                $(#[$vmeta:meta])* $const:ident => $var:ident $(($ty:ty))?
                $({ $( $(#[$fm:meta])* $f:ident : $fty:ty $(= $k:ident)? ),* })?;
            )*
        }
    ) => {
        $(#[$emeta])*
        #[derive(Clone, PartialEq, Eq, Debug)]
        #[non_exhaustive]
        pub enum $enum {
            $(
                $(#[$vmeta])*
                $var $(($ty))? $({ $( $(#[$fm])* $f : $fty ),* })?,
            )*
            /// Any other frame id, parameters kept as bytes.
            Other {
                /// The frame id.
                frame_id: FrameId,
                /// The raw parameters.
                parameters: Vec<u8>,
            },
        }

        impl $enum {
            /// The frame id this frame travels under.
            pub fn frame_id(&self) -> FrameId {
                match self {
                    $(
                        $crate::ezsp::macros::frame_any!($enum::$var $(($ty))?
                            $({ $( $f : $fty $(= $k)? ),* })?) => FrameId::$const,
                    )*
                    $enum::Other { frame_id, .. } => *frame_id,
                }
            }

            /// Appends the parameters in `version`'s layout.
            pub fn encode_parameters(
                &self,
                version: EzspVersion,
                out: &mut Vec<u8>,
            ) -> Result<(), EncodeError> {
                let mut w = ParamWriter::new(out, $names(self.frame_id()), version);
                match self {
                    $(
                        $crate::ezsp::macros::frame_pattern!(p; $enum::$var $(($ty))?
                            $({ $( $f : $fty $(= $k)? ),* })?) => {
                            $crate::ezsp::macros::frame_write!(p, w; $(($ty))?
                                $({ $( $f : $fty $(= $k)? ),* })?)
                        }
                    )*
                    $enum::Other { parameters, .. } => {
                        w.bytes(parameters);
                        Ok(())
                    }
                }
            }

            /// Decodes the parameters of the frame `frame_id`; `offset` is where they start in
            /// the frame (for error messages).
            pub fn decode_parameters(
                version: EzspVersion,
                frame_id: FrameId,
                parameters: &[u8],
                offset: usize,
            ) -> Result<Self, DecodeError> {
                let mut r = ParamReader::new(parameters, offset, $names(frame_id), version);
                let decoded = match frame_id {
                    $(
                        FrameId::$const => $crate::ezsp::macros::frame_read!(r; $enum::$var $(($ty))?
                            $({ $( $f : $fty $(= $k)? ),* })?),
                    )*
                    other => {
                        return Ok($enum::Other {
                            frame_id: other,
                            parameters: parameters.to_vec(),
                        });
                    }
                };
                r.finish()?;
                Ok(decoded)
            }

            #[doc = concat!("Appends the whole frame: the extended header with [`FrameControl::",
                stringify!($control), "`], then the parameters.")]
            pub fn encode_frame(
                &self,
                version: EzspVersion,
                sequence: u8,
                out: &mut Vec<u8>,
            ) -> Result<(), EncodeError> {
                let header = FrameHeader {
                    sequence,
                    control: FrameControl::$control,
                    frame_id: self.frame_id(),
                };
                header.encode(FrameFormat::Extended, out)?;
                self.encode_parameters(version, out)
            }
        }
    };
}

/// The pattern of one table variant, binding its parameters struct to `$p` or its inline
/// fields by name.
macro_rules! frame_pattern {
    ($p:ident; $e:ident :: $v:ident) => {
        $e::$v
    };
    ($p:ident; $e:ident :: $v:ident ($ty:ty)) => {
        $e::$v($p)
    };
    ($p:ident; $e:ident :: $v:ident { $( $f:ident : $fty:ty $(= $k:ident)? ),* }) => {
        $e::$v { $($f),* }
    };
}

/// The pattern of one table variant that binds nothing.
macro_rules! frame_any {
    ($e:ident :: $v:ident) => {
        $e::$v
    };
    ($e:ident :: $v:ident ($ty:ty)) => {
        $e::$v(..)
    };
    ($e:ident :: $v:ident { $( $f:ident : $fty:ty $(= $k:ident)? ),* }) => {
        $e::$v { .. }
    };
}

/// Writes what [`frame_pattern!`] bound.
macro_rules! frame_write {
    ($p:ident, $w:ident;) => {
        Ok(())
    };
    ($p:ident, $w:ident; ($ty:ty)) => {
        $p.write(&mut $w)
    };
    ($p:ident, $w:ident; { $( $f:ident : $fty:ty $(= $k:ident)? ),* }) => {{
        $( $crate::ezsp::macros::field_write!($w, $f $(, $k)?)?; )*
        Ok(())
    }};
}

/// Reads one table variant.
macro_rules! frame_read {
    ($r:ident; $e:ident :: $v:ident) => {
        $e::$v
    };
    ($r:ident; $e:ident :: $v:ident ($ty:ty)) => {
        $e::$v(<$ty>::read(&mut $r)?)
    };
    ($r:ident; $e:ident :: $v:ident { $( $f:ident : $fty:ty $(= $k:ident)? ),* }) => {
        $e::$v { $( $f: $crate::ezsp::macros::field_read!($r, $f, $fty $(, $k)?)? ),* }
    };
}

/// Writes one inline field: a status in the kind it has before v14, or any [`Field`].
///
/// [`Field`]: super::params::Field
macro_rules! field_write {
    ($w:ident, $f:ident, $k:ident) => {
        $w.status(stringify!($f), $crate::ezsp::params::StatusKind::$k, *$f)
    };
    ($w:ident, $f:ident) => {
        $crate::ezsp::params::Field::write_field($f, &mut $w, stringify!($f))
    };
}

/// Reads one inline field (see [`field_write!`]).
macro_rules! field_read {
    ($r:ident, $f:ident, $fty:ty, $k:ident) => {
        $r.status(stringify!($f), $crate::ezsp::params::StatusKind::$k)
    };
    ($r:ident, $f:ident, $fty:ty) => {
        <$fty as $crate::ezsp::params::Field>::read_field(&mut $r, stringify!($f))
    };
}

pub(crate) use {
    ezsp_frames, field_read, field_write, frame_any, frame_enum, frame_pattern, frame_read,
    frame_write,
};
