"""What the model costs: FLOPs per row counted on a real run, and the CPU's GEMM peak to
compare them with (``clean_throughput.py`` and ``inference.py`` use both)."""

from __future__ import annotations

import statistics
import time

from strseq_tasks.serve.runtime import Normalizer


def step_macs(cfg: dict, src_len: int, ext_vocab: int) -> int:
    """Multiply-adds of one decoder step for one row, by the exported graph's products
    (``folding.FoldedDecoderStep``; element-wise operations are not counted)."""
    hid, enc2, att = cfg["dec_hidden"], 2 * cfg["enc_hidden"], cfg["attn_dim"]
    filters, kernel = cfg["loc_filters"], cfg["loc_kernel"]
    return (2 * hid * 3 * hid  # GRU cell: previous output and hidden state (the embedding is a table)
            + hid * att  # attention query
            + src_len * (filters * kernel + filters * att + att + enc2)  # location, energy, context
            + (hid + enc2) * (hid + 4)  # combine, copy gate and copy modes
            + hid * cfg["vocab_size"]  # output layer
            + 3 * src_len * ext_vocab)  # copy distribution


def encoder_macs(cfg: dict, chars: int, rows: int) -> int:
    """Multiply-adds of the encoder for ``rows`` inputs of ``chars`` characters in all."""
    emb, enc, att = cfg["emb_dim"], cfg["enc_hidden"], cfg["attn_dim"]
    per_char = 2 * (emb * 3 * enc + enc * 3 * enc) + 2 * enc * att  # both GRU directions, attention keys
    return chars * per_char + rows * 2 * enc * cfg["dec_hidden"]  # + the decoder's initial state


def model_work(normalizer: Normalizer, values: list[str], batch_size: int = 64) -> dict:
    """FLOPs per row of normalizing ``values``, counted call by call on a real run."""
    cfg = normalizer.manifest["model_config"]
    count = {"encoder_macs": 0, "decoder_macs": 0, "decoder_row_steps": 0}
    make = normalizer.stepper

    def counting_stepper(source):
        inner = make(source)
        count["encoder_macs"] += encoder_macs(cfg, int(source.lengths.sum()), source.size)
        per_step = step_macs(cfg, source.ids.shape[1], source.copy_map.shape[2])

        def step(tokens, state, rows):
            count["decoder_row_steps"] += len(rows)
            count["decoder_macs"] += len(rows) * per_step
            return inner(tokens, state, rows)

        step.state = inner.state
        return step

    normalizer.stepper = counting_stepper  # an instance attribute: transduce calls it per batch
    try:
        normalizer.normalize(values, batch_size=batch_size)
    finally:
        del normalizer.stepper
    rows = len(values)
    return {"mflop_per_row": round(2 * (count["encoder_macs"] + count["decoder_macs"]) / rows / 1e6, 2),
            "encoder_mflop_per_row": round(2 * count["encoder_macs"] / rows / 1e6, 2),
            "decoder_row_steps_per_row": round(count["decoder_row_steps"] / rows, 2)}


def gemm_peak(repeats: int = 7) -> float:
    """FLOP/s of onnxruntime's fp32 MatMul on one thread, at the shape of the decoder's largest
    products (64 rows x 256 x 768); the median of ``repeats`` timings."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rows, inner, outer = 64, 256, 768
    weight = numpy_helper.from_array(np.random.default_rng(0).random((inner, outer), dtype=np.float32), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "gemm",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [rows, inner])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [rows, outer])], [weight])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                                   .SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((rows, inner), dtype=np.float32)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(500):
            session.run(None, {"X": x})
        times.append((time.perf_counter() - started) / 500)
    return 2 * rows * inner * outer / statistics.median(times)
