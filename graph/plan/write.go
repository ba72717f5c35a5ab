package plan

import (
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/mkgraph/mkgraph/graph/model"
)

// The writers below write each type's selection as gqlgen's generated
// marshalers do: the same bytes, the same errors, the same null
// propagation. Each returns false when the object is null because a
// non-null field of it is; the caller then writes null in its place, or
// propagates. Every field is written even after one failed, as gqlgen
// resolves them all.

// done closes an object opened at mark, or rolls it back when invalid.
func (x *state) done(mark int, obj *object, valid bool) bool {
	if !valid {
		x.buf = x.buf[:mark]
		return false
	}
	if len(obj.fields) == 0 {
		x.buf = append(x.buf, '{')
	}
	x.buf = append(x.buf, '}')
	return true
}

func (x *state) enter(f *field) { x.buf = append(x.buf, f.prefix...); x.path = append(x.path, f.path) }
func (x *state) leave()         { x.path = x.path[:len(x.path)-1] }

func (x *state) link(l *model.Link, obj *object) bool {
	mark, valid := len(x.buf), true
	for i := range obj.fields {
		f := &obj.fields[i]
		x.enter(f)
		switch f.id {
		case typename:
			x.buf = append(x.buf, f.lit...)
		case linkID:
			x.buf = appendString(x.buf, l.ID)
		case linkInstitutionID:
			x.buf = appendString(x.buf, l.InstitutionID)
		case linkInstitutionName:
			x.buf = appendString(x.buf, l.InstitutionName)
		case linkInstitutionAvatar:
			x.optString(l.InstitutionAvatar)
		case linkState:
			x.buf = appendQuote(x.buf, string(l.State))
		case linkErrorCode:
			x.optString(l.ErrorCode)
		case linkProvider:
			x.buf = appendString(x.buf, l.Provider)
		case linkTags:
			x.strings(l.Tags)
		case linkWebhook:
			x.optString(l.Webhook)
		case linkProducts:
			if l.Products == nil {
				valid = x.invalidNull("Link", "products", "Products!", false)
			} else if !x.products(l.Products, f.sel) {
				valid = x.null(false)
			}
		case linkAvailableProducts:
			x.buf = append(x.buf, '[')
			for j, p := range l.AvailableProducts {
				if j > 0 {
					x.buf = append(x.buf, ',')
				}
				x.buf = appendQuote(x.buf, string(p))
			}
			x.buf = append(x.buf, ']')
		case linkAccounts:
			a := x.args(f.args, f.field, rootLinks)
			accounts, err := x.roots.Accounts(x.ctx, l, a.ids)
			if err != nil {
				x.fieldError(f.field, err)
				valid = x.null(false)
			} else if !objects(x, accounts, f.sel, "Link", "accounts", "Account!", (*state).account) {
				valid = x.null(false)
			}
		}
		x.leave()
	}
	return x.done(mark, obj, valid)
}

func (x *state) products(p *model.Products, obj *object) bool {
	mark := len(x.buf)
	for i := range obj.fields {
		f := &obj.fields[i]
		x.enter(f)
		var s *model.ProductStatus
		switch f.id {
		case typename:
			x.buf = append(x.buf, f.lit...)
			x.leave()
			continue
		case productsAccounts:
			s = p.Accounts
		case productsAccountNumbers:
			s = p.AccountNumbers
		case productsIdentity:
			s = p.Identity
		case productsTransactions:
			s = p.Transactions
		case productsInvestments:
			s = p.Investments
		case productsEnrichment:
			s = p.Enrichment
		}
		if s == nil || !x.status(s, f.sel) {
			x.buf = append(x.buf, "null"...)
		}
		x.leave()
	}
	return x.done(mark, obj, true)
}

func (x *state) status(s *model.ProductStatus, obj *object) bool {
	mark := len(x.buf)
	for i := range obj.fields {
		f := &obj.fields[i]
		x.buf = append(x.buf, f.prefix...)
		switch f.id {
		case typename:
			x.buf = append(x.buf, f.lit...)
		case statusRefreshedAt:
			x.optTime(s.RefreshedAt)
		case statusLastAttemptedAt:
			x.optTime(s.LastAttemptedAt)
		case statusErrorCode:
			x.optString(s.ErrorCode)
		case statusErrorMessage:
			x.optString(s.ErrorMessage)
		case statusUnavailable:
			x.optString(s.Unavailable)
		case statusLastEnriched:
			x.optTime(s.LastEnriched)
		}
	}
	return x.done(mark, obj, true)
}

// objects writes a [T!]! of objects (the field object.field, of element
// type declared): null (false) when an entry is.
func objects[T any](x *state, list []*T, obj *object, object, field, declared string, write func(*state, *T, *object) bool) bool {
	mark, valid := len(x.buf), true
	x.buf = append(x.buf, '[')
	for i, v := range list {
		if i > 0 {
			x.buf = append(x.buf, ',')
		}
		x.path = append(x.path, ast.PathIndex(i))
		if v == nil {
			valid = x.invalidNull(object, field, declared, true)
		} else if !write(x, v, obj) {
			valid = false
		}
		x.leave()
	}
	return x.list(mark, valid)
}

// list closes a list, or rolls it back when an entry is null.
func (x *state) list(mark int, valid bool) bool {
	if !valid {
		x.buf = x.buf[:mark]
		return false
	}
	x.buf = append(x.buf, ']')
	return true
}

func (x *state) account(a *model.Account, obj *object) bool {
	mark, valid := len(x.buf), true
	for i := range obj.fields {
		f := &obj.fields[i]
		x.enter(f)
		switch f.id {
		case typename:
			x.buf = append(x.buf, f.lit...)
		case accountID:
			x.buf = appendString(x.buf, a.ID)
		case accountType:
			x.buf = appendString(x.buf, a.Type)
		case accountName:
			x.buf = appendString(x.buf, a.Name)
		case accountNickname:
			x.optString(a.Nickname)
		case accountMask:
			x.optString(a.Mask)
		case accountBalances:
			if a.Balances == nil {
				x.buf = append(x.buf, "null"...)
			} else {
				x.balances(a.Balances, f.sel)
			}
		case accountOriginalID:
			x.optString(a.OriginalID)
		case accountClosed:
			x.optBool(a.Closed)
		case accountOwners:
			if !objects(x, a.Owners, f.sel, "Account", "owners", "Owner!", (*state).owner) {
				valid = x.null(false)
			}
		}
		x.leave()
	}
	return x.done(mark, obj, valid)
}

func (x *state) balances(b *model.Balances, obj *object) bool {
	mark := len(x.buf)
	for i := range obj.fields {
		f := &obj.fields[i]
		x.buf = append(x.buf, f.prefix...)
		switch f.id {
		case typename:
			x.buf = append(x.buf, f.lit...)
		case balancesCurrency:
			x.optString(b.Currency)
		case balancesAvailable:
			x.optDecimal(b.Available)
		case balancesCurrent:
			x.optDecimal(b.Current)
		case balancesLimit:
			x.optDecimal(b.Limit)
		case balancesBalanceDate:
			x.optTime(b.BalanceDate)
		}
	}
	return x.done(mark, obj, true)
}

func (x *state) owner(o *model.Owner, obj *object) bool {
	mark, valid := len(x.buf), true
	for i := range obj.fields {
		f := &obj.fields[i]
		x.enter(f)
		ok := true
		switch f.id {
		case typename:
			x.buf = append(x.buf, f.lit...)
		case ownerNames:
			x.strings(o.Names)
		case ownerAddresses:
			ok = objects(x, o.Addresses, f.sel, "Owner", "addresses", "Address!", (*state).address)
		case ownerPhoneNumbers:
			ok = objects(x, o.PhoneNumbers, f.sel, "Owner", "phoneNumbers", "PhoneNumber!", (*state).phone)
		case ownerEmails:
			ok = objects(x, o.Emails, f.sel, "Owner", "emails", "Email!", (*state).email)
		}
		if !ok {
			valid = x.null(false)
		}
		x.leave()
	}
	return x.done(mark, obj, valid)
}

func (x *state) address(a *model.Address, obj *object) bool {
	mark := len(x.buf)
	for i := range obj.fields {
		f := &obj.fields[i]
		x.buf = append(x.buf, f.prefix...)
		switch f.id {
		case typename:
			x.buf = append(x.buf, f.lit...)
		case addressStreet:
			x.optString(a.Street)
		case addressCity:
			x.optString(a.City)
		case addressRegion:
			x.optString(a.Region)
		case addressPostalCode:
			x.optString(a.PostalCode)
		case addressCountry:
			x.optString(a.Country)
		case addressPrimary:
			x.optBool(a.Primary)
		}
	}
	return x.done(mark, obj, true)
}

func (x *state) phone(p *model.PhoneNumber, obj *object) bool {
	mark := len(x.buf)
	for i := range obj.fields {
		f := &obj.fields[i]
		x.buf = append(x.buf, f.prefix...)
		switch f.id {
		case typename:
			x.buf = append(x.buf, f.lit...)
		case phoneNumber:
			x.buf = appendString(x.buf, p.Number)
		case phoneType:
			x.optString(p.Type)
		case phonePrimary:
			x.optBool(p.Primary)
		}
	}
	return x.done(mark, obj, true)
}

func (x *state) email(e *model.Email, obj *object) bool {
	mark := len(x.buf)
	for i := range obj.fields {
		f := &obj.fields[i]
		x.buf = append(x.buf, f.prefix...)
		switch f.id {
		case typename:
			x.buf = append(x.buf, f.lit...)
		case emailAddress:
			x.buf = appendString(x.buf, e.Address)
		case emailPrimary:
			x.optBool(e.Primary)
		}
	}
	return x.done(mark, obj, true)
}
