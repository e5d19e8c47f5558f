"""Names, shapes and files of the three SAM 3 graphs; one list for exporter and runtimes.

::

    vision.onnx   pixel_values (1, 3, S, S) float32
                  -> fpn_0 (1, C, 4g, 4g), fpn_1 (1, C, 2g, 2g), fpn_2 (1, C, g, g)  (g = S / 14)
    text.onnx     input_ids (1, L) int64, attention_mask (1, L) int64
                  -> text_embeds (1, L, D)                                          (L = 32)
    decoder.onnx  fpn_0, fpn_1, fpn_2, text_embeds (1, L, D) float32, text_mask (1, L) int64
                  -> pred_masks (1, Q, 4g, 4g) logits, pred_logits (1, Q),
                     pred_boxes (1, Q, 4) x0 y0 x1 y1 in [0, 1], presence_logits (1, 1)

Text embeddings are decoder *inputs*, so a new command (new phrase) never needs a new engine:
only text.onnx runs for it, once. All shapes are static for a given checkpoint.
"""

GRAPH_IO: dict[str, dict[str, list[str]]] = {
    'vision': {'inputs': ['pixel_values'], 'outputs': ['fpn_0', 'fpn_1', 'fpn_2']},
    'text': {'inputs': ['input_ids', 'attention_mask'], 'outputs': ['text_embeds']},
    'decoder': {'inputs': ['fpn_0', 'fpn_1', 'fpn_2', 'text_embeds', 'text_mask'],
                'outputs': ['pred_masks', 'pred_logits', 'pred_boxes', 'presence_logits']},
}

GRAPH_FILES = {name: f'{name}.onnx' for name in GRAPH_IO}
MANIFEST = 'sam3_export.json'

#: Triton model names of a served SAM 3 (``unipixel-ros serve --backend sam3``). Two models keep
#: the encode-once split over the network: the text model once per concept of a command, the frame
#: model once per frame for all of the command's concepts (the vision features, 85 MB for
#: ``facebook/sam3``, never leave the server).
TRITON_MODELS = {'text': 'sam3_text', 'frame': 'sam3_frame'}

#: Their tensors, ``(name, numpy dtype name, shape without the batch dimension)``; -1 = variable.
#: The frame model takes the camera's uint8 frame (the server pre-processes it to the numbers of
#: ``preprocessor_config.json``, as the in-process predictors do), K concepts' text embeddings
#: and the client's score threshold and candidate cap (0 = none); it answers, per concept, only
#: the N queries that pass (padded to the largest N with query index -1), so a frame costs
#: kilobytes to a few megabytes on the wire instead of all Q mask logits.
TRITON_IO: dict[str, dict[str, list[tuple[str, str, tuple[int, ...]]]]] = {
    'text': {'inputs': [('input_ids', 'int64', (-1,)), ('attention_mask', 'int64', (-1,))],
             'outputs': [('text_embeds', 'float32', (-1, -1))]},
    'frame': {'inputs': [('image', 'uint8', (-1, -1, 3)),
                         ('text_embeds', 'float32', (-1, -1, -1)),
                         ('text_mask', 'int64', (-1, -1)),
                         ('score_threshold', 'float32', (1,)),
                         ('max_candidates', 'int64', (1,))],
              'outputs': [('pred_masks', 'float32', (-1, -1, -1, -1)),     # (K, N, h, w)
                          ('pred_logits', 'float32', (-1, -1)),            # (K, N)
                          ('pred_boxes', 'float32', (-1, -1, 4)),          # (K, N, 4)
                          ('presence_logits', 'float32', (-1,)),           # (K,)
                          ('query_indices', 'int64', (-1, -1))]},          # (K, N), -1 = pad
}
