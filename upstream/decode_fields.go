package upstream

// The JSON names of each struct's fields, in the order the readers number
// them (and the upstream usually sends them).
var (
	identityNames      = []string{"accounts", "link"}
	accountNames       = []string{"account_id", "account_type", "name", "nickname", "account_mask", "balances", "original_id", "closed", "owners"}
	balancesNames      = []string{"currency", "available", "current", "limit", "balance_date"}
	ownerNames         = []string{"names", "addresses", "phone_numbers", "emails"}
	addressNames       = []string{"street", "city", "region", "postal_code", "country", "primary"}
	phoneNames         = []string{"number", "type", "primary"}
	emailNames         = []string{"address", "primary"}
	linkNames          = []string{"link_id", "institution_id", "institution_name", "institution_avatar", "state", "error_code", "provider", "link_tags", "webhook", "products", "available_products"}
	productStatusNames = []string{"refreshed_at", "last_attempted_at", "error_code", "error_message", "unavailable", "last_enriched"}
)

func (d *identityDecoder) identity(id *Identity) error {
	c, err := d.value()
	if err != nil {
		return err
	}
	return d.object(c, identityNames, func(i int, c byte) error {
		if i == 0 {
			return d.accountList(c, &id.Accounts)
		}
		return d.link(c, &id.Link)
	})
}

func (d *identityDecoder) account(c byte, a *Account) error {
	return d.object(c, accountNames, func(i int, c byte) error {
		switch i {
		case 0:
			return d.str(c, &a.AccountID)
		case 1:
			return d.str(c, &a.AccountType)
		case 2:
			return d.str(c, &a.Name)
		case 3:
			return d.optStr(c, &a.Nickname)
		case 4:
			return d.optStr(c, &a.AccountMask)
		case 5:
			return d.optBalances(c, &a.Balances)
		case 6:
			return d.optStr(c, &a.OriginalID)
		case 7:
			return d.optBool(c, &a.Closed)
		}
		return array(d, c, &a.Owners, &d.owners, (*identityDecoder).owner)
	})
}

func (d *identityDecoder) optBalances(c byte, dst **Balances) error {
	switch c {
	case 'n':
		*dst = nil
		return d.literal("null")
	case '{':
		if *dst == nil { // else a second balances object adds to the first
			*dst = d.balances.one()
		}
	}
	b := *dst
	return d.object(c, balancesNames, func(i int, c byte) error {
		switch i {
		case 0:
			return d.optStr(c, &b.Currency)
		case 1:
			return d.decimal(c, &b.Available)
		case 2:
			return d.decimal(c, &b.Current)
		case 3:
			return d.decimal(c, &b.Limit)
		}
		return d.timestamp(c, &b.BalanceDate)
	})
}

func (d *identityDecoder) owner(c byte, o *Owner) error {
	return d.object(c, ownerNames, func(i int, c byte) error {
		switch i {
		case 0:
			return array(d, c, &o.Names, &d.strPtrs, (*identityDecoder).optStr)
		case 1:
			return array(d, c, &o.Addresses, &d.addresses, (*identityDecoder).address)
		case 2:
			return array(d, c, &o.PhoneNumbers, &d.phones, (*identityDecoder).phone)
		}
		return array(d, c, &o.Emails, &d.emails, (*identityDecoder).email)
	})
}

func (d *identityDecoder) address(c byte, a *Address) error {
	return d.object(c, addressNames, func(i int, c byte) error {
		switch i {
		case 0:
			return d.optStr(c, &a.Street)
		case 1:
			return d.optStr(c, &a.City)
		case 2:
			return d.optStr(c, &a.Region)
		case 3:
			return d.optStr(c, &a.PostalCode)
		case 4:
			return d.optStr(c, &a.Country)
		}
		return d.optBool(c, &a.Primary)
	})
}

func (d *identityDecoder) phone(c byte, p *PhoneNumber) error {
	return d.object(c, phoneNames, func(i int, c byte) error {
		switch i {
		case 0:
			return d.optStr(c, &p.Number)
		case 1:
			return d.optStr(c, &p.Type)
		}
		return d.optBool(c, &p.Primary)
	})
}

func (d *identityDecoder) email(c byte, e *Email) error {
	return d.object(c, emailNames, func(i int, c byte) error {
		if i == 0 {
			return d.optStr(c, &e.Address)
		}
		return d.optBool(c, &e.Primary)
	})
}

func (d *identityDecoder) link(c byte, l *Link) error {
	return d.object(c, linkNames, func(i int, c byte) error {
		switch i {
		case 0:
			return d.str(c, &l.LinkID)
		case 1:
			return d.str(c, &l.InstitutionID)
		case 2:
			return d.str(c, &l.InstitutionName)
		case 3:
			return d.optStr(c, &l.InstitutionAvatar)
		case 4:
			return d.str(c, &l.State)
		case 5:
			return d.optStr(c, &l.ErrorCode)
		case 6:
			return d.str(c, &l.Provider)
		case 7:
			return array(d, c, &l.LinkTags, &d.strPtrs, (*identityDecoder).optStr)
		case 8:
			return d.optStr(c, &l.Webhook)
		case 9:
			return d.products(c, &l.Products)
		}
		return array(d, c, &l.AvailableProducts, nil, (*identityDecoder).str)
	})
}

// productNames are the product keys the upstream sends, kept as map keys
// without allocating them again.
var productNames = []string{"accounts", "account_numbers", "identity", "transactions", "investments", "enrichment"}

// products reads the products object, or null (nil). A product given twice
// is the last one, whole (encoding/json decodes each map value anew).
func (d *identityDecoder) products(c byte, dst *map[string]*ProductStatus) error {
	switch c {
	case 'n':
		*dst = nil
		return d.literal("null")
	case '{':
	default:
		return d.typeError("an object")
	}
	if err := d.open(); err != nil {
		return err
	}
	if *dst == nil {
		*dst = make(map[string]*ProductStatus, len(productNames))
	}
	if !d.first('}') {
		return nil
	}
	for {
		k, err := d.key()
		if err != nil {
			return err
		}
		var name string
		for _, n := range productNames {
			if n == string(k) {
				name = n
				break
			}
		}
		if name == "" {
			name = string(k)
		}
		c, err := d.value()
		if err != nil {
			return err
		}
		var st *ProductStatus
		switch c {
		case 'n':
			err = d.literal("null")
		case '{':
			st = d.statuses.one()
			err = d.productStatus(c, st)
		default:
			err = d.typeError("an object")
		}
		if err != nil {
			return err
		}
		(*dst)[name] = st
		if more, err := d.next('}'); err != nil || !more {
			return err
		}
	}
}

func (d *identityDecoder) productStatus(c byte, s *ProductStatus) error {
	return d.object(c, productStatusNames, func(i int, c byte) error {
		switch i {
		case 0:
			return d.timestamp(c, &s.RefreshedAt)
		case 1:
			return d.timestamp(c, &s.LastAttemptedAt)
		case 2:
			return d.optStr(c, &s.ErrorCode)
		case 3:
			return d.optStr(c, &s.ErrorMessage)
		case 4:
			return d.optStr(c, &s.Unavailable)
		}
		return d.timestamp(c, &s.LastEnriched)
	})
}
