// RUN: norm-opt %s -split-input-file -verify-diagnostics

func.func @reduction_dim_out_of_range(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{reduction dim 2 is out of range for an input of rank 2}}
  %y, %r = norm.normalize %x reduce [2] eps(1.0e-05, inside) : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @reduction_dim_repeated(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{reduction dim 1 is repeated}}
  %y, %r = norm.normalize %x reduce [1, 1] eps(1.0e-05, inside) : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @no_reduced_dim(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{expects at least one reduced dim}}
  %y, %r = norm.normalize %x reduce [] eps(1.0e-05, inside) : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @empty_reduction(%x: tensor<4x0xf32>) {
  // expected-error @+1 {{reduces over an empty set: dim 1 has size 0}}
  %y, %r = norm.normalize %x reduce [1] eps(1.0e-05, inside) : (tensor<4x0xf32>) -> (tensor<4x0xf32>, tensor<4xf32>)
  return
}

// -----

func.func @group_count_without_dim(%x: tensor<2x8x5xf32>) {
  // expected-error @+1 {{expects both a group count and a group dim}}
  %y:3 = "norm.normalize"(%x) <{reduction_dims = array<i64: 2>, center, epsilon = 1.0e-05 : f64, eps_placement = 0 : i32, num_groups = 2 : i64, operandSegmentSizes = array<i32: 1, 0, 0, 0, 0, 0, 0>}>
      : (tensor<2x8x5xf32>) -> (tensor<2x8x5xf32>, tensor<2x2xf32>, tensor<2x2xf32>)
  return
}

// -----

func.func @group_dim_out_of_range(%x: tensor<2x8x5xf32>) {
  // expected-error @+1 {{group dim 3 is out of range for an input of rank 3}}
  %y, %s:2 = norm.normalize %x reduce [2] center eps(1.0e-05, inside) groups 2 along 3 : (tensor<2x8x5xf32>) -> (tensor<2x8x5xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @group_dim_reduced(%x: tensor<2x8x5xf32>) {
  // expected-error @+1 {{group dim 2 must not be a reduction dim}}
  %y, %s:2 = norm.normalize %x reduce [2] center eps(1.0e-05, inside) groups 5 along 2 : (tensor<2x8x5xf32>) -> (tensor<2x8x5xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @groups_not_positive(%x: tensor<2x8x5xf32>) {
  // expected-error @+1 {{number of groups must be positive, got 0}}
  %y, %s:2 = norm.normalize %x reduce [2] center eps(1.0e-05, inside) groups 0 along 1 : (tensor<2x8x5xf32>) -> (tensor<2x8x5xf32>, tensor<2x0xf32>, tensor<2x0xf32>)
  return
}

// -----

func.func @groups_do_not_divide(%x: tensor<2x6x5xf32>) {
  // expected-error @+1 {{4 groups do not divide the 6 channels of dim 1}}
  %y, %m, %r = norm.group_norm %x {num_groups = 4 : i64} : (tensor<2x6x5xf32>) -> (tensor<2x6x5xf32>, tensor<2x4xf32>, tensor<2x4xf32>)
  return
}

// -----

func.func @eps_zero(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{eps must be positive and finite, got 0}}
  %y, %m, %r = norm.layer_norm %x {eps = 0.0 : f64} : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @eps_negative(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{eps must be positive and finite, got -1}}
  %y, %r = norm.rms_norm %x {eps = -1.0 : f64} : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @eps_infinite(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{eps must be positive and finite, got INF}}
  %y, %r = norm.normalize %x reduce [1] eps(0x7FF0000000000000, inside) : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @gamma_without_affine_dims(%x: tensor<4x8xf32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{has gamma/beta but no affine dims}}
  %y, %r = norm.normalize %x gamma(%g) reduce [1] eps(1.0e-05, inside) : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @affine_dims_without_gamma(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{has affine dims but no gamma or beta}}
  %y, %r = norm.normalize %x reduce [1] eps(1.0e-05, inside) affine [1] : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @affine_dim_out_of_range(%x: tensor<4x8xf32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{affine dim 5 is out of range for an input of rank 2}}
  %y, %r = norm.normalize %x gamma(%g) reduce [1] eps(1.0e-05, inside) affine [5] : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @affine_dims_not_ascending(%x: tensor<4x8xf32>, %g: tensor<8x4xf32>) {
  // expected-error @+1 {{affine dims must be in ascending order}}
  %y, %r = norm.normalize %x gamma(%g) reduce [1] eps(1.0e-05, inside) affine [1, 0] : (tensor<4x8xf32>, tensor<8x4xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @weight_shape_mismatch(%x: tensor<?x768xf32>, %w: tensor<512xf32>) {
  // expected-error @+1 {{weight has shape 512 but the normalization needs 768}}
  %y, %m, %r = norm.layer_norm %x weight(%w) : (tensor<?x768xf32>, tensor<512xf32>) -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>)
  return
}

// -----

func.func @weight_rank_mismatch(%x: tensor<2x4x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{weight has shape 8 but the normalization needs 4x8}}
  %y, %m, %r = norm.layer_norm %x weight(%w) {normalized_ndim = 2 : i64} : (tensor<2x4x8xf32>, tensor<8xf32>) -> (tensor<2x4x8xf32>, tensor<2xf32>, tensor<2xf32>)
  return
}

// -----

func.func @bias_element_type_mismatch(%x: tensor<4x8xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{bias element type 'f32' does not match the expected 'bf16'}}
  %y, %m, %r = norm.layer_norm %x bias(%b) : (tensor<4x8xbf16>, tensor<8xf32>) -> (tensor<4x8xbf16>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @unsupported_element_type(%x: tensor<4x8xi32>) {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit float or 16-bit float or bfloat16 type or 64-bit float values}}
  %y, %m, %r = norm.layer_norm %x : (tensor<4x8xi32>) -> (tensor<4x8xi32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @unranked_input(%x: tensor<*xf32>) {
  // expected-error @+1 {{operand #0 must be ranked tensor}}
  %y, %m, %r = norm.layer_norm %x : (tensor<*xf32>) -> (tensor<*xf32>, tensor<?xf32>, tensor<?xf32>)
  return
}

// -----

func.func @output_type_mismatch(%x: tensor<4x8xf16>) {
  // expected-error @+1 {{output type 'tensor<4x8xf32>' does not match input type 'tensor<4x8xf16>'}}
  %y, %m, %r = norm.layer_norm %x : (tensor<4x8xf16>) -> (tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @saved_stats_wrong_shape(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{saved mean has shape 8 but the normalization needs 4}}
  %y, %m, %r = norm.layer_norm %x : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @saved_stats_wrong_type(%x: tensor<4x8xf16>) {
  // expected-error @+1 {{saved rstd element type 'f16' does not match the expected 'f32'}}
  %y, %m, %r = norm.layer_norm %x : (tensor<4x8xf16>) -> (tensor<4x8xf16>, tensor<4xf32>, tensor<4xf16>)
  return
}

// -----

func.func @wrong_statistics_count(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{expects 2 statistics results}}
  %y, %r = norm.normalize %x reduce [1] center eps(1.0e-05, inside) : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @given_mean_without_var(%x: tensor<4x8xf32>, %m: tensor<8xf32>) {
  // expected-error @+1 {{expects both given mean and given variance}}
  %y = "norm.normalize"(%x, %m) <{reduction_dims = array<i64: 0>, center, epsilon = 1.0e-05 : f64, eps_placement = 0 : i32, operandSegmentSizes = array<i32: 1, 0, 0, 1, 0, 0, 0>}>
      : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @running_mean_without_var(%x: tensor<4x8xf32>, %m: tensor<8xf32>) {
  // expected-error @+1 {{expects both running mean and variance}}
  %y:5 = "norm.normalize"(%x, %m) <{reduction_dims = array<i64: 0>, center, epsilon = 1.0e-05 : f64, eps_placement = 0 : i32, momentum = 0.1 : f64, operandSegmentSizes = array<i32: 1, 0, 0, 0, 0, 1, 0>}>
      : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @running_stats_on_inference_form(%x: tensor<4x8xf32>, %m: tensor<8xf32>, %v: tensor<8xf32>) {
  // expected-error @+1 {{cannot update running statistics when statistics are given (inference form)}}
  %y, %s:2 = norm.normalize %x stats(%m, %v) running(%m, %v) reduce [0] center eps(1.0e-05, inside) momentum 0.1
      : (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @given_stats_wrong_shape(%x: tensor<4x8xf32>, %m: tensor<4xf32>, %v: tensor<4xf32>) {
  // expected-error @+1 {{running_mean has shape 4 but the normalization needs 8}}
  %y = norm.batch_norm %x running(%m, %v) : (tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @given_stats_wrong_type(%x: tensor<4x8xf16>, %m: tensor<8xf16>, %v: tensor<8xf16>) {
  // expected-error @+1 {{running_mean element type 'f16' does not match the expected 'f32'}}
  %y = norm.batch_norm %x running(%m, %v) : (tensor<4x8xf16>, tensor<8xf16>, tensor<8xf16>) -> tensor<4x8xf16>
  return
}

// -----

func.func @momentum_without_running(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{has a momentum but no running statistics}}
  %y, %s:2 = norm.normalize %x reduce [0] center eps(1.0e-05, inside) momentum 0.1 : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @running_without_momentum(%x: tensor<4x8xf32>, %m: tensor<8xf32>, %v: tensor<8xf32>) {
  // expected-error @+1 {{expects a momentum for the running statistics}}
  %y, %s:4 = norm.normalize %x running(%m, %v) reduce [0] center eps(1.0e-05, inside)
      : (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @momentum_out_of_range(%x: tensor<4x8xf32>, %m: tensor<8xf32>, %v: tensor<8xf32>) {
  // expected-error @+1 {{momentum must be in [0, 1], got 1.5}}
  %y, %s:4 = norm.batch_norm %x running(%m, %v) {training, momentum = 1.5 : f64}
      : (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @running_stats_wrong_shape(%x: tensor<4x8xf32>, %m: tensor<4xf32>, %v: tensor<4xf32>) {
  // expected-error @+1 {{running mean has shape 4 but the normalization needs 8}}
  %y, %s:4 = norm.batch_norm %x running(%m, %v) {training}
      : (tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @running_stats_single_value(%x: tensor<1x8xf32>, %m: tensor<8xf32>, %v: tensor<8xf32>) {
  // expected-error @+1 {{updating running statistics needs more than one value per statistic}}
  %y, %s:4 = norm.batch_norm %x running(%m, %v) {training}
      : (tensor<1x8xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<1x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @batch_norm_inference_without_running(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{inference form (no 'training') needs running(%running_mean, %running_var)}}
  %y = norm.batch_norm %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @batch_norm_inference_with_saved_stats(%x: tensor<4x8xf32>, %m: tensor<8xf32>, %v: tensor<8xf32>) {
  // expected-error @+1 {{expects 0 statistics results}}
  %y, %s:2 = norm.batch_norm %x running(%m, %v) : (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @batch_norm_channel_dim_out_of_range(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{channel_dim 2 must be in [0, 1]}}
  %y, %s:2 = norm.batch_norm %x {training, channel_dim = 2 : i64} : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @batch_norm_rank_one(%x: tensor<8xf32>) {
  // expected-error @+1 {{expects an input of rank >= 2, got rank 1}}
  %y, %s:2 = norm.batch_norm %x {training} : (tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @instance_norm_rank_two(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{expects an input of rank >= 3, got rank 2}}
  %y, %m, %r = norm.instance_norm %x : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @instance_norm_channel_is_batch(%x: tensor<4x8x9xf32>) {
  // expected-error @+1 {{channel_dim 0 must be in [1, 2]}}
  %y, %m, %r = norm.instance_norm %x {channel_dim = 0 : i64} : (tensor<4x8x9xf32>) -> (tensor<4x8x9xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @group_norm_channel_dim_out_of_range(%x: tensor<4x8x9xf32>) {
  // expected-error @+1 {{channel_dim 3 must be in [1, 2]}}
  %y, %m, %r = norm.group_norm %x {num_groups = 2 : i64, channel_dim = 3 : i64} : (tensor<4x8x9xf32>) -> (tensor<4x8x9xf32>, tensor<4x2xf32>, tensor<4x2xf32>)
  return
}

// -----

func.func @layer_norm_ndim_too_large(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{normalized_ndim 3 must be in [1, 2]}}
  %y, %m, %r = norm.layer_norm %x {normalized_ndim = 3 : i64} : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @rms_norm_ndim_zero(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{normalized_ndim 0 must be in [1, 2]}}
  %y, %r = norm.rms_norm %x {normalized_ndim = 0 : i64} : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @scalar_input(%x: tensor<f32>) {
  // expected-error @+1 {{expects a ranked input of rank >= 1}}
  %y, %r = norm.normalize %x reduce [] eps(1.0e-05, inside) : (tensor<f32>) -> (tensor<f32>, tensor<f32>)
  return
}

// -----

func.func @backward_no_gradient(%dy: tensor<4x8xf32>, %x: tensor<4x8xf32>, %r: tensor<4xf32>) {
  // expected-error @+1 {{computes no gradient}}
  norm.normalize_backward %dy, %x rstd(%r) reduce [1] eps(1.0e-05, inside) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> ()
  return
}

// -----

func.func @backward_result_count(%dy: tensor<4x8xf32>, %x: tensor<4x8xf32>, %r: tensor<4xf32>) {
  // expected-error @+1 {{expects 1 results (one per requested gradient: grad_input, grad_weight, grad_bias) but has 2}}
  %a, %b = norm.normalize_backward %dy, %x rstd(%r) reduce [1] eps(1.0e-05, inside) {grad_input} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @backward_dy_type(%dy: tensor<4x8xf16>, %x: tensor<4x8xf32>, %r: tensor<4xf32>) {
  // expected-error @+1 {{output gradient type 'tensor<4x8xf16>' does not match input type 'tensor<4x8xf32>'}}
  %dx = norm.normalize_backward %dy, %x rstd(%r) reduce [1] eps(1.0e-05, inside) {grad_input} : (tensor<4x8xf16>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @backward_missing_mean(%dy: tensor<4x8xf32>, %x: tensor<4x8xf32>, %r: tensor<4xf32>) {
  // expected-error @+1 {{expects the saved mean (centered normalization)}}
  %dx = norm.normalize_backward %dy, %x rstd(%r) reduce [1] center eps(1.0e-05, inside) {grad_input} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @backward_missing_rstd(%dy: tensor<4x8xf32>, %x: tensor<4x8xf32>) {
  // expected-error @+1 {{expects the saved rstd}}
  %dx = norm.normalize_backward %dy, %x reduce [1] eps(1.0e-05, inside) {grad_input} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @backward_stats_shape(%dy: tensor<4x8xf32>, %x: tensor<4x8xf32>, %m: tensor<8xf32>, %r: tensor<8xf32>) {
  // expected-error @+1 {{mean has shape 8 but the normalization needs 4}}
  %dx = norm.normalize_backward %dy, %x mean(%m) rstd(%r) reduce [1] center eps(1.0e-05, inside) {grad_input} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @backward_dgamma_without_gamma(%dy: tensor<4x8xf32>, %x: tensor<4x8xf32>, %r: tensor<4xf32>) {
  // expected-error @+1 {{computes the gamma gradient without gamma}}
  %dg = norm.normalize_backward %dy, %x rstd(%r) reduce [1] eps(1.0e-05, inside) affine [1] {grad_weight} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<8xf32>
  return
}

// -----

func.func @backward_dbeta_without_affine(%dy: tensor<4x8xf32>, %x: tensor<4x8xf32>, %r: tensor<4xf32>) {
  // expected-error @+1 {{computes the beta gradient without affine dims}}
  %db = norm.normalize_backward %dy, %x rstd(%r) reduce [1] eps(1.0e-05, inside) {grad_bias} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<8xf32>
  return
}

// -----

func.func @backward_rstd_with_given_stats(%dy: tensor<4x8xf32>, %x: tensor<4x8xf32>, %m: tensor<8xf32>, %v: tensor<8xf32>) {
  // expected-error @+1 {{has a saved rstd but statistics are given}}
  %dx = norm.normalize_backward %dy, %x mean(%m) rstd(%v) var(%v) reduce [0] center eps(1.0e-05, inside) {grad_input} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @backward_bad_eps(%dy: tensor<4x8xf32>, %x: tensor<4x8xf32>, %r: tensor<4xf32>) {
  // expected-error @+1 {{eps must be positive and finite, got -1}}
  %dx = norm.normalize_backward %dy, %x rstd(%r) reduce [1] eps(-1.0, inside) {grad_input} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<4x8xf32>
  return
}
