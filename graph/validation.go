package graph

import (
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// validationRules are gqlparser's rules and objectForScalar.
func validationRules() *rules.Rules {
	r := rules.NewDefaultRules()
	r.AddRule(objectForScalar.Name, objectForScalar.RuleFunc)
	return r
}

// objectForScalar refuses an object literal where a scalar or an enum is
// expected ({ links(ids: {}) { id } }): gqlparser's ValuesOfCorrectType lets
// an empty one through to execution, where coercing it fails as an internal
// error. Variables are checked by gqlparser already ("cannot use map as ID").
var objectForScalar = core.Rule{
	Name: "ObjectForScalar",
	RuleFunc: func(observers *core.Events, addError core.AddErrFunc) {
		observers.OnValue(func(_ *core.Walker, value *ast.Value) {
			if value.Kind != ast.ObjectValue || value.Definition == nil || value.ExpectedType == nil {
				return
			}
			if k := value.Definition.Kind; k != ast.Scalar && k != ast.Enum {
				return
			}
			addError(
				core.Message(`Expected value of type "%s", found an object.`, value.ExpectedType.String()),
				core.At(value.Position),
			)
		})
	},
}
