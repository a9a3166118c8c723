# Evaluation of explanations: deletion/insertion AUC against the PyTorch
# re-implementation of RISE's CausalMetric (tools/eval_ref.py) and ROAD
# against tools/road_ref.py, on the bundled Fashion-MNIST CNN and on the
# shared CIFAR-10 ResNet-20; Spearman, model randomisation and ROAD
# imputation units; `neuromask eval` end to end.
nm_add_c_test(eval_units test_eval.c units ${CMAKE_SOURCE_DIR}/models/fashion_cnn.onnx 6)
add_test(NAME eval_units_resnet20 COMMAND eval_units units shared:models/cifar10_resnet20.onnx 22)
set_tests_properties(eval_units_resnet20 PROPERTIES SKIP_RETURN_CODE 77 ENVIRONMENT "NEUROMASK_SHARED=${NEUROMASK_SHARED}")

set(NM_EVALREF ${CMAKE_BINARY_DIR}/eval_ref)
# REF_fashion / REF_resnet20 run tools/SCRIPT.py (reference outputs in
# NM_EVALREF/SUBDIR_*); CHECK_fashion / CHECK_resnet20 run `eval_units MODE`
# on them.
function(nm_eval_reference ref check script mode subdir)
  nm_add_script_test(${ref}_fashion ${NM_PYTHON} ${CMAKE_SOURCE_DIR}/tools/${script}.py
    --model ${CMAKE_SOURCE_DIR}/models/fashion_cnn.onnx --recipe fashion
    --image ${CMAKE_SOURCE_DIR}/data/fashion/0_Ankle_boot.png --make-maps --outdir ${NM_EVALREF}/${subdir}fashion)
  nm_add_script_test(${ref}_resnet20 sh -c "test -n \"$NEUROMASK_SHARED\" || exit 77 && \
    ${NM_PYTHON} ${CMAKE_SOURCE_DIR}/tools/${script}.py --model $NEUROMASK_SHARED/models/cifar10_resnet20.onnx \
    --recipe cifar --image $NEUROMASK_SHARED/images/cifar10_test_jpg/cat_0000.jpg --make-maps \
    --outdir ${NM_EVALREF}/${subdir}resnet20")
  add_test(NAME ${check}_fashion COMMAND eval_units ${mode} ${NM_EVALREF}/${subdir}fashion fashion
    ${CMAKE_SOURCE_DIR}/models/fashion_cnn.onnx)
  add_test(NAME ${check}_resnet20 COMMAND eval_units ${mode} ${NM_EVALREF}/${subdir}resnet20 cifar
    shared:models/cifar10_resnet20.onnx)
  set_tests_properties(${check}_fashion ${check}_resnet20 PROPERTIES SKIP_RETURN_CODE 77
    ENVIRONMENT "NEUROMASK_SHARED=${NEUROMASK_SHARED}")
  foreach(model fashion resnet20)
    set_tests_properties(${ref}_${model} PROPERTIES FIXTURES_SETUP ${ref}_${model})
    set_tests_properties(${check}_${model} PROPERTIES FIXTURES_REQUIRED ${ref}_${model})
  endforeach()
endfunction()
nm_eval_reference(eval_ref eval_auc eval_ref auc "")
nm_eval_reference(road_ref eval_road road_ref road road_)

nm_add_script_test(test_eval_cli sh ${CMAKE_CURRENT_SOURCE_DIR}/test_eval_cli.sh)
nm_add_script_test(test_eval_grid sh ${CMAKE_CURRENT_SOURCE_DIR}/test_eval_grid.sh)
# index.html in a real headless browser (chromium): no console message, every part present, sorting works.
nm_add_script_test(test_report_browser ${NM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_report_browser.py)
