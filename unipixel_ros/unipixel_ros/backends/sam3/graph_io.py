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
