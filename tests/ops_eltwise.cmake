# Elementwise, activation, matrix, softmax and normalisation operators:
# forward references and finite-difference gradients on one-node graphs.
nm_add_c_test(test_ops_eltwise test_ops_eltwise.c)
