# Evaluation of explanations: deletion/insertion AUC against the PyTorch
# re-implementation of RISE's CausalMetric (tools/eval_ref.py), on the
# bundled Fashion-MNIST CNN and on the shared CIFAR-10 ResNet-20; Spearman
# and model randomisation units; `neuromask eval` end to end.
nm_add_c_test(eval_units test_eval.c units ${CMAKE_SOURCE_DIR}/models/fashion_cnn.onnx 6)
add_test(NAME eval_units_resnet20 COMMAND eval_units units shared:models/cifar10_resnet20.onnx 22)

set(NM_EVALREF ${CMAKE_BINARY_DIR}/eval_ref)
nm_add_script_test(eval_ref_fashion ${NM_PYTHON} ${CMAKE_SOURCE_DIR}/tools/eval_ref.py
  --model ${CMAKE_SOURCE_DIR}/models/fashion_cnn.onnx --recipe fashion
  --image ${CMAKE_SOURCE_DIR}/data/fashion/0_Ankle_boot.png --make-maps --outdir ${NM_EVALREF}/fashion)
nm_add_script_test(eval_ref_resnet20 sh -c "test -n \"$NEUROMASK_SHARED\" || exit 77 && \
  ${NM_PYTHON} ${CMAKE_SOURCE_DIR}/tools/eval_ref.py --model $NEUROMASK_SHARED/models/cifar10_resnet20.onnx \
  --recipe cifar --image $NEUROMASK_SHARED/images/cifar10_test_jpg/cat_0000.jpg --make-maps --outdir ${NM_EVALREF}/resnet20")
add_test(NAME eval_auc_fashion COMMAND eval_units auc ${NM_EVALREF}/fashion fashion ${CMAKE_SOURCE_DIR}/models/fashion_cnn.onnx)
add_test(NAME eval_auc_resnet20 COMMAND eval_units auc ${NM_EVALREF}/resnet20 cifar shared:models/cifar10_resnet20.onnx)
set_tests_properties(eval_units_resnet20 eval_auc_fashion eval_auc_resnet20 PROPERTIES SKIP_RETURN_CODE 77
  ENVIRONMENT "NEUROMASK_SHARED=${NEUROMASK_SHARED}")
set_tests_properties(eval_ref_fashion PROPERTIES FIXTURES_SETUP evalref_fashion)
set_tests_properties(eval_ref_resnet20 PROPERTIES FIXTURES_SETUP evalref_resnet20)
set_tests_properties(eval_auc_fashion PROPERTIES FIXTURES_REQUIRED evalref_fashion)
set_tests_properties(eval_auc_resnet20 PROPERTIES FIXTURES_REQUIRED evalref_resnet20)

nm_add_script_test(test_eval_cli sh ${CMAKE_CURRENT_SOURCE_DIR}/test_eval_cli.sh)
