"""MediaPipe's face, iris, palm and hand models converted for fexa.face.tflite_graph (Apache-2.0: see LICENSE, NOTICE).

Each model is `<name>.json` (graph) + `<name>.safetensors` (constants), written by scripts/convert_mediapipe.py.
"""
