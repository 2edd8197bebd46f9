"""The exported transformer body's interface: the names of its inputs and output, shared by
every runtime that runs it (onnx.py, openvino.py), so that neither imports the other."""

EMBEDS_INPUT, MASK_INPUT, HIDDEN_OUTPUT = "inputs_embeds", "attention_mask", "last_hidden_state"
