"""Which pictures of an H.264 stream each picture can reference, read from the slice headers alone.

    refs = reference_graph(packets, extradata)      # None where the stream is beyond this reader
    needed = dependency_closure(refs, [target])     # the packets a decoder must reconstruct

:func:`vtr.video.sample_frames` uses it to skip, while it scans towards a wanted frame, the
reference pictures no wanted frame depends on -- in x264's default B-pyramid the middle B-frame
of each group is a reference, yet with one reference frame for P-frames (x264's faster presets)
only the B-frames of its own group use it. Nothing is decoded: the reader parses the sequence and
picture parameter sets and each slice header up to its reference picture marking, and replays
the decoded picture buffer (sliding window and memory management operation 1, as in H.264
8.2.4-8.2.5) to list, for every P-slice of a reference picture, the pictures its list 0 can hold.
A B-slice is taken to depend on every reference picture in the buffer (its lists are ordered by
picture order count, which is not modelled), an I-slice on none; so is a non-reference picture,
whose header is not read beyond its slice type (nothing later depends on it, so its own
references matter only when it is itself wanted).

The answer is conservative or absent, never wrong by construction: a stream with field pictures,
long-term references, slice groups, memory management operations other than 1, gaps in
``frame_num`` or a list modification naming a picture not in the buffer gives None, and the
caller then decodes every reference picture (what libavcodec's ``skip_frame`` NONREF does).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

# slice_type % 5
P_SLICE, B_SLICE, I_SLICE, SP_SLICE, SI_SLICE = range(5)
# nal_unit_type
NAL_SLICE, NAL_IDR, NAL_SPS, NAL_PPS = 1, 5, 7, 8
# profile_idc values whose SPS carries chroma format, bit depths and scaling matrices (7.3.2.1.1)
HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


class Unsupported(Exception):
    """A stream feature this reader does not model; the caller falls back to decoding every reference."""


class _Bits:
    """MSB-first bit reader over an RBSP (emulation prevention bytes removed), with Exp-Golomb codes."""

    def __init__(self, rbsp: bytes) -> None:
        self.value, self.size, self.pos = int.from_bytes(rbsp, "big"), 8 * len(rbsp), 0

    def u(self, n: int) -> int:
        if self.pos + n > self.size:
            raise Unsupported("header runs past the end of its NAL unit")
        self.pos += n
        return (self.value >> (self.size - self.pos)) & ((1 << n) - 1)

    def ue(self) -> int:
        rest = self.size - self.pos
        tail = self.value & ((1 << rest) - 1)
        zeros = rest - tail.bit_length()  # leading zero bits before the code's first 1
        if tail == 0 or zeros > 31:
            raise Unsupported("malformed Exp-Golomb code")
        self.pos += zeros
        return self.u(zeros + 1) - 1

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def _rbsp(nal: bytes | memoryview, limit: int = 1024) -> bytes:
    """The NAL payload after its header byte, without emulation prevention bytes (first ``limit`` bytes).

    ``replace`` scans left to right without overlaps, which is exactly how 0x000003 is unescaped.
    """
    return bytes(nal[1 : 1 + limit]).replace(b"\x00\x00\x03", b"\x00\x00")


def nal_units(data: bytes | memoryview, length_size: int) -> Iterator[bytes | memoryview]:
    """The NAL units of one packet: length-prefixed (mp4/mkv, ``length_size`` bytes) or Annex B (0)."""
    if length_size:
        data = memoryview(data)
        i = 0
        while i + length_size <= len(data):
            size = int.from_bytes(data[i : i + length_size], "big")
            i += length_size
            if size:
                yield data[i : i + size]
            i += size
        return
    data = bytes(data)
    starts, i = [], data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    for begin, end in zip(starts, [*(i - 3 for i in starts[1:]), len(data)], strict=True):
        nal = data[begin:end].rstrip(b"\x00")
        if nal:
            yield nal


@dataclass
class _Sps:
    log2_max_frame_num: int
    poc_type: int
    log2_max_poc_lsb: int
    delta_pic_order_always_zero: bool
    max_num_ref_frames: int
    gaps_allowed: bool
    frame_mbs_only: bool
    separate_colour_plane: bool
    chroma_array_type: int


@dataclass
class _Pps:
    sps_id: int
    bottom_field_pic_order_present: bool
    num_ref_idx_default: tuple[int, int]
    weighted_pred: bool
    weighted_bipred_idc: int
    redundant_pic_cnt_present: bool


def _scaling_list(bits: _Bits, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale or last


def _parse_sps(bits: _Bits) -> tuple[int, _Sps]:
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level_idc
    sps_id = bits.ue()
    chroma_format, separate = 1, False
    if profile in HIGH_PROFILES:
        chroma_format = bits.ue()
        if chroma_format == 3:
            separate = bool(bits.u(1))
        bits.ue(), bits.ue(), bits.u(1)  # bit depths, qpprime_y_zero_transform_bypass
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format != 3 else 12):
                if bits.u(1):
                    _scaling_list(bits, 16 if i < 6 else 64)
    log2_max_frame_num = bits.ue() + 4
    poc_type = bits.ue()
    log2_max_poc_lsb, always_zero = 0, False
    if poc_type == 0:
        log2_max_poc_lsb = bits.ue() + 4
    elif poc_type == 1:
        always_zero = bool(bits.u(1))
        bits.se(), bits.se()
        for _ in range(bits.ue()):
            bits.se()
    max_refs = bits.ue()
    gaps = bool(bits.u(1))
    bits.ue(), bits.ue()  # picture size in macroblocks
    frame_mbs_only = bool(bits.u(1))
    chroma_array_type = 0 if separate else chroma_format
    sps = _Sps(
        log2_max_frame_num, poc_type, log2_max_poc_lsb, always_zero, max_refs, gaps, frame_mbs_only,
        separate, chroma_array_type,
    )  # fmt: skip
    return sps_id, sps


def _parse_pps(bits: _Bits) -> tuple[int, _Pps]:
    pps_id, sps_id = bits.ue(), bits.ue()
    bits.u(1)  # entropy_coding_mode_flag
    bottom_present = bool(bits.u(1))
    if bits.ue() != 0:
        raise Unsupported("slice groups (FMO)")
    defaults = (bits.ue() + 1, bits.ue() + 1)
    weighted_pred, bipred_idc = bool(bits.u(1)), bits.u(2)
    bits.se(), bits.se(), bits.se()  # pic_init_qp, pic_init_qs, chroma_qp_index_offset
    bits.u(1), bits.u(1)  # deblocking_filter_control_present, constrained_intra_pred
    redundant = bool(bits.u(1))
    return pps_id, _Pps(sps_id, bottom_present, defaults, weighted_pred, bipred_idc, redundant)


@dataclass
class _Slice:
    slice_type: int
    frame_num: int
    idr: bool
    nal_ref_idc: int
    num_ref_idx_l0: int
    l0_modifications: list[tuple[int, int]] = field(default_factory=list)
    mmco: list[tuple[int, int]] = field(default_factory=list)  # (operation, difference_of_pic_nums - 1)
    adaptive_marking: bool = False


def _ref_list_modifications(bits: _Bits) -> list[tuple[int, int]]:
    ops = []
    if bits.u(1):
        while (idc := bits.ue()) != 3:
            if idc > 2:
                raise Unsupported(f"ref_pic_list_modification idc {idc}")
            ops.append((idc, bits.ue()))
    return ops


def _skip_weights(bits: _Bits, counts: Sequence[int], chroma: bool) -> None:
    bits.ue()  # luma_log2_weight_denom
    if chroma:
        bits.ue()
    for count in counts:
        for _ in range(count):
            if bits.u(1):
                bits.se(), bits.se()
            if chroma and bits.u(1):
                bits.se(), bits.se(), bits.se(), bits.se()


def _parse_slice(nal: bytes, spss: dict[int, _Sps], ppss: dict[int, _Pps]) -> _Slice:
    """The slice header fields that decide references (7.3.3), up to dec_ref_pic_marking."""
    nal_ref_idc, nal_type = nal[0] >> 5 & 3, nal[0] & 0x1F
    bits = _Bits(_rbsp(nal, 128))
    bits.ue()  # first_mb_in_slice
    slice_type = bits.ue() % 5
    pps_id = bits.ue()
    if pps_id not in ppss or ppss[pps_id].sps_id not in spss:
        raise Unsupported("slice before its parameter sets")
    pps = ppss[pps_id]
    sps = spss[pps.sps_id]
    if sps.separate_colour_plane:
        bits.u(2)
    frame_num = bits.u(sps.log2_max_frame_num)
    if not sps.frame_mbs_only and bits.u(1):
        raise Unsupported("field pictures")
    idr = nal_type == NAL_IDR
    if idr:
        bits.ue()
    if sps.poc_type == 0:
        bits.u(sps.log2_max_poc_lsb)
        if pps.bottom_field_pic_order_present:
            bits.se()
    elif sps.poc_type == 1 and not sps.delta_pic_order_always_zero:
        bits.se()
        if pps.bottom_field_pic_order_present:
            bits.se()
    if pps.redundant_pic_cnt_present and bits.ue():
        raise Unsupported("redundant pictures")
    if slice_type == B_SLICE:
        bits.u(1)  # direct_spatial_mv_pred_flag
    counts = list(pps.num_ref_idx_default)
    if slice_type in (P_SLICE, SP_SLICE, B_SLICE) and bits.u(1):
        counts[0] = bits.ue() + 1
        if slice_type == B_SLICE:
            counts[1] = bits.ue() + 1
    header = _Slice(slice_type, frame_num, idr, nal_ref_idc, counts[0])
    if slice_type not in (I_SLICE, SI_SLICE):
        header.l0_modifications = _ref_list_modifications(bits)
        if slice_type == B_SLICE:
            _ref_list_modifications(bits)
    weighted = (pps.weighted_pred and slice_type in (P_SLICE, SP_SLICE)) or (
        pps.weighted_bipred_idc == 1 and slice_type == B_SLICE
    )
    if weighted:
        _skip_weights(bits, counts if slice_type == B_SLICE else counts[:1], sps.chroma_array_type != 0)
    if nal_ref_idc:
        if idr:
            bits.u(1)  # no_output_of_prior_pics_flag
            if bits.u(1):
                raise Unsupported("long-term reference (IDR)")
        elif bits.u(1):
            header.adaptive_marking = True
            while (op := bits.ue()) != 0:
                if op != 1:
                    raise Unsupported(f"memory management operation {op}")
                header.mmco.append((op, bits.ue()))
    return header


class _ParameterSets:
    """The SPS and PPS tables in force, filled from the extradata and from in-band NAL units."""

    def __init__(self, extradata: bytes | None) -> None:
        self.spss: dict[int, _Sps] = {}
        self.ppss: dict[int, _Pps] = {}
        self.length_size = 0
        if extradata and extradata[0] == 1:  # avcC: length-prefixed NAL units, parameter sets inside
            self.length_size = (extradata[4] & 3) + 1
            i, sets = 6, []
            for kind in ("sps", "pps"):
                count = extradata[5] & 0x1F if kind == "sps" else extradata[i]
                i += kind == "pps"
                for _ in range(count):
                    size = int.from_bytes(extradata[i : i + 2], "big")
                    sets.append(extradata[i + 2 : i + 2 + size])
                    i += 2 + size
            self.read(sets)
        elif extradata:
            self.read(nal_units(extradata, 0))

    def read(self, nals: Iterable[bytes]) -> None:
        for nal in nals:
            if nal and nal[0] & 0x1F == NAL_SPS:
                sps_id, sps = _parse_sps(_Bits(_rbsp(nal)))
                self.spss[sps_id] = sps
            elif nal and nal[0] & 0x1F == NAL_PPS:
                pps_id, pps = _parse_pps(_Bits(_rbsp(nal)))
                self.ppss[pps_id] = pps

    def slice_nals(self, packet: bytes | memoryview) -> list[bytes | memoryview]:
        """The slice NAL units of one packet (reading any parameter sets it carries first)."""
        slices = []
        for nal in nal_units(packet, self.length_size):
            nal_type = nal[0] & 0x1F
            if nal_type in (NAL_SPS, NAL_PPS):
                self.read([nal])
            elif nal_type in (NAL_SLICE, NAL_IDR):
                slices.append(nal)
            elif nal_type in (2, 3, 4, 20, 21):
                raise Unsupported(f"NAL unit type {nal_type} (data partitioning or MVC/SVC)")
        return slices


def _slice_type(nal: bytes | memoryview) -> int:
    """Just the slice_type of a slice NAL unit (its second Exp-Golomb code)."""
    bits = _Bits(_rbsp(nal, 16))
    bits.ue()
    return bits.ue() % 5


@dataclass(frozen=True)
class Picture:
    """One packet's picture: is it a reference, is it all B-slices, and the packets it can reference."""

    reference: bool
    bidirectional: bool
    intra: bool
    refs: frozenset[int]


class ReferenceTracker:
    """Fed the packets of a stream one by one in decode order; ``pictures`` is the graph, or None.

    Replays the decoded picture buffer as it goes, so nothing but the graph is kept in memory.
    """

    def __init__(self, extradata: bytes | None) -> None:
        self.pictures: list[Picture] | None = []
        try:
            self._sets = _ParameterSets(extradata)
        except (Unsupported, IndexError, KeyError, ValueError):
            self.pictures = None
        self._dpb: list[tuple[int, int]] = []  # short-term references: (packet position, frame_num)
        self._prev_ref_frame_num: int | None = None

    def add(self, packet: bytes) -> None:
        if self.pictures is None:
            return
        try:
            self.pictures.append(self._picture(len(self.pictures), packet))
        except (Unsupported, IndexError, KeyError, ValueError):
            self.pictures = None

    def _picture(self, position: int, packet: bytes) -> Picture:
        nals = self._sets.slice_nals(packet)
        if not nals:
            raise Unsupported(f"packet {position} holds no slice")
        if len(self._sets.spss) != 1:
            raise Unsupported("several sequence parameter sets")
        if nals[0][0] >> 5 & 3 == 0:
            # A non-reference picture changes no later picture: only its slice types are read, and it
            # is taken to depend on every reference in the buffer (it matters only when it is wanted).
            types = {_slice_type(nal) for nal in nals}
            return Picture(
                reference=False,
                bidirectional=types == {B_SLICE},
                intra=types <= {I_SLICE, SI_SLICE},
                refs=frozenset(j for j, _ in self._dpb),
            )
        slices = [_parse_slice(nal, self._sets.spss, self._sets.ppss) for nal in nals]
        sps = next(iter(self._sets.spss.values()))
        first = slices[0]
        max_frame_num = 1 << sps.log2_max_frame_num
        if any(s.frame_num != first.frame_num or s.nal_ref_idc != first.nal_ref_idc for s in slices):
            raise Unsupported("slices of one packet disagree (several pictures in a packet?)")
        if first.idr:
            self._dpb = []
        elif self._prev_ref_frame_num is None:
            raise Unsupported("stream does not start with an IDR picture")
        elif first.frame_num != (self._prev_ref_frame_num + 1) % max_frame_num:
            raise Unsupported("gap in frame_num")

        def pic_num(frame_num: int) -> int:
            return frame_num - max_frame_num if frame_num > first.frame_num else frame_num

        refs: set[int] = set()
        for s in slices:
            if s.slice_type == B_SLICE:  # lists ordered by picture order count: not modelled, take all
                refs.update(j for j, _ in self._dpb)
            elif s.slice_type in (P_SLICE, SP_SLICE):
                refs.update(_list0(s, self._dpb, pic_num, max_frame_num))
        types = {s.slice_type for s in slices}
        if first.nal_ref_idc:
            self._dpb = _mark(first, self._dpb, position, pic_num, sps.max_num_ref_frames)
            self._prev_ref_frame_num = first.frame_num
        return Picture(
            reference=first.nal_ref_idc != 0,
            bidirectional=types == {B_SLICE},
            intra=types <= {I_SLICE, SI_SLICE},
            refs=frozenset(refs),
        )


def reference_graph(packets: Iterable[bytes], extradata: bytes | None) -> list[Picture] | None:
    """For each packet (one picture each, in decode order), what it can reference; None if unsure.

    ``packets`` are the raw packet payloads of the video stream, ``extradata`` the codec extradata
    (avcC for mp4/Matroska, Annex B parameter sets or None for MPEG-TS and raw streams).
    """
    tracker = ReferenceTracker(extradata)
    for packet in packets:
        tracker.add(packet)
        if tracker.pictures is None:
            break
    return tracker.pictures


def _list0(s: _Slice, dpb: list[tuple[int, int]], pic_num, max_frame_num: int) -> list[int]:
    """RefPicList0 of a P-slice (8.2.4.2.1 and 8.2.4.3.1): by descending PicNum, then modified."""
    by_num = {pic_num(f): j for j, f in dpb}
    order = [by_num[n] for n in sorted(by_num, reverse=True)]
    pred = s.frame_num
    for index, (idc, abs_diff_minus1) in enumerate(s.l0_modifications):
        if idc == 2:
            raise Unsupported("long-term reference in a list modification")
        step = abs_diff_minus1 + 1
        no_wrap = pred - step if idc == 0 else pred + step
        no_wrap = no_wrap + max_frame_num if no_wrap < 0 else no_wrap
        no_wrap = no_wrap - max_frame_num if no_wrap >= max_frame_num else no_wrap
        pred = no_wrap
        target = no_wrap - max_frame_num if no_wrap > s.frame_num else no_wrap
        if target not in by_num:
            raise Unsupported("list modification names a picture not in the buffer")
        j = by_num[target]
        order = order[:index] + [j] + [k for k in order[index:] if k != j]
    return order[: s.num_ref_idx_l0]


def _mark(s: _Slice, dpb: list[tuple[int, int]], position: int, pic_num, max_refs: int) -> list:
    """The short-term references after this reference picture (8.2.5.3 sliding window, 8.2.5.4 op 1)."""
    if s.idr:
        return [(position, s.frame_num)]
    if s.adaptive_marking:
        for _, diff_minus1 in s.mmco:
            gone = s.frame_num - (diff_minus1 + 1)
            dpb = [(j, f) for j, f in dpb if pic_num(f) != gone]
    elif len(dpb) >= max(max_refs, 1):
        oldest = min(dpb, key=lambda entry: pic_num(entry[1]))
        dpb = [entry for entry in dpb if entry != oldest]
    return [*dpb, (position, s.frame_num)]


def dependency_closure(pictures: Sequence[Picture], targets: Iterable[int]) -> set[int]:
    """The packets that must be decoded to reconstruct packets ``targets``: they and all they reference."""
    needed: set[int] = set()
    stack = list(targets)
    while stack:
        j = stack.pop()
        if j not in needed:
            needed.add(j)
            stack.extend(pictures[j].refs)
    return needed
