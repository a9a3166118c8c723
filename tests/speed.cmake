# What the speed work rewrites: the plan's fusions, channels-last layouts and
# first-writer gradients against the unrewritten graph; the bf16 option
# against float32 (with ../shared).
nm_add_c_test(test_fusion test_fusion.c)
set_property(TEST test_fusion APPEND PROPERTY LABELS asan)
nm_add_c_test(test_precision test_precision.c)
# The weights held once (released plain copies, no template copy): named
# reads and re-planning give back what the first plan had (with ../shared).
nm_add_c_test(test_weights_once test_weights_once.c)
# NaN/Inf inputs refused; the thread policy: same bytes at any thread count,
# one thread while other processes keep every CPU busy.
nm_add_c_test(test_model_threads test_model_threads.c ${CMAKE_SOURCE_DIR}/models/fashion_cnn.onnx)
# Winograd's 16-channel layers as one-thread shares of the batch: the same
# bytes as the whole batch (with ../shared).
nm_add_c_test(test_conv_slices test_conv_slices.c)
