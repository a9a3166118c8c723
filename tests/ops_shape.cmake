# Shape, layout, reduction and resize operators: forward and gradient checks.
nm_add_c_test(test_ops_shape test_ops_shape.c)
# The op table refers to operator families weakly; pull in the ones tested here.
foreach(op flatten reshape squeeze unsqueeze shape constant constantofshape identity dropout
        transpose concat split gather pad reducemean resize upsample)
  target_link_options(test_ops_shape PRIVATE "LINKER:-u,nm_op_${op}")
endforeach()
