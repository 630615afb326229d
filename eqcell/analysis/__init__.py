"""The analysis, as stages: each a pure function from frozen data to frozen data.

    structure  names, dependency order, output and states          (Spec, equations -> Structure)
    roles      what each parameter is: matrix, vector, gain         (Structure -> Roles)
    shapes     the size of every value and parameter                (-> Shapes)
    fusion     matrices that share an operand, biases, layout       (-> Fusion)
    lowering   fused products, statements, weights and slices       (-> Lowered)
    recurrence which states are linear, for the layer's scan        (-> Recurrence)
    naming     every identifier the generated module binds          (-> Names, then the CellIR)

`eqcell.analyze.analyze` runs them in this order; none reads a file or a framework."""
